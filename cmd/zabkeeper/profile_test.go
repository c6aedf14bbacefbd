package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestStartProfiles: --cpuprofile and --memprofile leave pprof files (gzip
// streams) at exit, --trace an execution trace.
func TestStartProfiles(t *testing.T) {
	dir := t.TempDir()
	cpu, mem := filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "mem.pprof")
	tr := filepath.Join(dir, "run.trace")
	stop, err := startProfiles(cpu, mem, tr)
	require.NoError(t, err)
	sink := 0
	for i := range 1_000_000 {
		sink += i % 7
	}
	_ = make([]byte, 1<<20)
	stop(slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NotZero(t, sink)
	for _, p := range []string{cpu, mem} {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		require.Greater(t, len(b), 2, p)
		require.Equal(t, []byte{0x1f, 0x8b}, b[:2], "%s is a gzipped pprof profile", p)
	}

	b, err := os.ReadFile(tr)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(b), "go 1."), "%s is a Go execution trace", tr)

	_, err = startProfiles(filepath.Join(dir, "missing", "cpu.pprof"), "", "")
	require.Error(t, err)
	_, err = startProfiles("", "", filepath.Join(dir, "missing", "run.trace"))
	require.Error(t, err)
}
