package main

import (
	"context"
	"io"
	"testing"

	"github.com/zabkeeper/zabkeeper/internal/testserver"
)

func TestExample(t *testing.T) {
	testserver.RunExample(t, []string{"call http://127.0.0.1:8080"}, func(ctx context.Context, addr string, out io.Writer) error {
		return run(ctx, addr, "/services", "api", 8080, out)
	})
}
