package main

import (
	"context"
	"io"
	"testing"

	"github.com/zabkeeper/zabkeeper/internal/testserver"
)

func TestExample(t *testing.T) {
	testserver.RunExample(t, []string{"w1 leads", "scheduled the jobs"}, func(ctx context.Context, addr string, out io.Writer) error {
		return run(ctx, addr, "/election/scheduler", "w1", 1, out)
	})
}
