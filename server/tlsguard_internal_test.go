package server

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestTLSLogPacer: a burst of handshakeLogBurst lines, then one per
// handshakeLogEvery; the line let through after a pause says how many
// were held back, and the count starts again from zero.
func TestTLSLogPacer(t *testing.T) {
	var p logPacer
	t0 := time.Unix(1000, 0)
	for i := range handshakeLogBurst {
		ok, skipped := p.allow(t0)
		require.True(t, ok, "line %d of the burst", i)
		require.Zero(t, skipped)
	}
	for range 25 {
		ok, _ := p.allow(t0.Add(100 * time.Millisecond))
		require.False(t, ok)
	}
	ok, skipped := p.allow(t0.Add(handshakeLogEvery + 100*time.Millisecond))
	require.True(t, ok)
	require.Equal(t, 25, skipped)
	ok, _ = p.allow(t0.Add(handshakeLogEvery + 200*time.Millisecond))
	require.False(t, ok, "at most one line per second after the burst")
	ok, skipped = p.allow(t0.Add(2*handshakeLogEvery + 200*time.Millisecond))
	require.True(t, ok)
	require.Equal(t, 1, skipped)
	// A long quiet spell refills the burst, not more.
	later := t0.Add(time.Hour)
	for range handshakeLogBurst {
		ok, _ := p.allow(later)
		require.True(t, ok)
	}
	ok, _ = p.allow(later)
	require.False(t, ok)
}
