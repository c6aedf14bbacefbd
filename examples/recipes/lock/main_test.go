package main

import (
	"context"
	"io"
	"testing"

	"github.com/zabkeeper/zabkeeper/internal/testserver"
)

func TestExample(t *testing.T) {
	testserver.RunExample(t, []string{"holding /locks/nightly-report", "step 3"}, func(ctx context.Context, addr string, out io.Writer) error {
		return run(ctx, addr, "/locks/nightly-report", out)
	})
}
