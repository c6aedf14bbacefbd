package server

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestAuditNeverBlocksAndCountsDrops stalls the audit writer (a pipe nobody
// reads) and offers more lines than the queue holds: every offer returns at
// once and the overflow is counted, not waited for.
func TestAuditNeverBlocksAndCountsDrops(t *testing.T) {
	r, w := io.Pipe()
	a := &auditLog{lines: make(chan []byte, 4), done: make(chan struct{}), out: w, log: slog.New(slog.DiscardHandler)}
	go a.run()
	start := time.Now()
	for i := 0; i < 100; i++ {
		a.offer(&auditEntry{Operation: "create", Znode: "/x", Result: "success"})
	}
	require.Less(t, time.Since(start), time.Second, "offers never wait for the writer")
	// The writer holds at most one line in its stalled Write, the queue 4.
	require.GreaterOrEqual(t, a.dropped.Load(), int64(100-5))
	require.LessOrEqual(t, a.dropped.Load(), int64(100-4))
	_ = r.Close() // the stalled write fails; close drains the rest
	a.close()
	require.Equal(t, int64(100), a.dropped.Load()+a.written.Load())
}
