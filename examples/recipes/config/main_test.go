package main

import (
	"context"
	"io"
	"testing"

	"github.com/zabkeeper/zabkeeper/internal/testserver"
)

func TestExample(t *testing.T) {
	testserver.RunExample(t, []string{"start: exists false", "version 0: maxConns=100", "version 1: maxConns=200", "version 2: maxConns=300"}, func(ctx context.Context, addr string, out io.Writer) error {
		return run(ctx, addr, "/config/limits", out)
	})
}
