package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zabkeeper/zabkeeper/internal/testserver"
)

func TestExample(t *testing.T) {
	addr := testserver.Start(t, testserver.Config(t, 0)).Addr
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out strings.Builder
	if err := runExample(ctx, addr, &out); err != nil {
		t.Fatalf("example failed: %v\n%s", err, out.String())
	}
	for _, want := range wantOutput {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

var wantOutput = []string{"call http://127.0.0.1:8080"}

func runExample(ctx context.Context, addr string, out *strings.Builder) error {
	return run(ctx, addr, "/services", "api", 8080, out)
}
