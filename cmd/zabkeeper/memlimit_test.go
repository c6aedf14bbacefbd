package main

import (
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

// The server's collector target is serverGCPercent unless GOGC is in the
// environment, which wins.
func TestSetGCTarget(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })

	t.Setenv("GOGC", "80") // restores the environment afterwards
	debug.SetGCPercent(80) // what the runtime made of it at start
	setGCTarget(logger)
	require.Equal(t, 80, debug.SetGCPercent(80), "GOGC in the environment is the operator's")

	require.NoError(t, os.Unsetenv("GOGC"))
	setGCTarget(logger)
	require.Equal(t, serverGCPercent, debug.SetGCPercent(100))
}
