package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
)

// TestLivezFailsOnlyWhenTheLoopStalls: /livez stays true while the loop
// turns and fails, naming the stall, once the loop has not turned for the
// liveness timeout; it recovers when the loop does. /readyz says "shutting
// down" once the server stops.
func TestLivezFailsOnlyWhenTheLoopStalls(t *testing.T) {
	cfg := DefaultConfig()
	dir := t.TempDir()
	cfg.DataDir, cfg.DataLogDir = dir, dir
	cfg.ClientPort, cfg.ClientPortAddress = 0, "127.0.0.1"
	cfg.AdminServerAddress, cfg.AdminServerPort = "127.0.0.1", 0
	cfg.TickTime = 50
	s, err := New(cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	// Thirty ticks: a busy CI machine never delays a tick that long.
	s.livenessTimeout = 1500 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	base := "http://" + s.AdminAddr().String()
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			require.False(t, time.Now().After(deadline), "timed out waiting for %s", what)
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitUntil("ready", func() bool { code, _ := get("/readyz"); return code == http.StatusOK })
	// Several liveness timeouts of an idle server: the ticks keep it live.
	for range 12 {
		code, body := get("/livez")
		require.Equal(t, http.StatusOK, code, body)
		time.Sleep(s.livenessTimeout / 6)
	}

	// Stall the loop: a four-letter word whose reply nobody reads blocks it.
	stuck := make(chan string)
	require.True(t, s.post(event{kind: evFourLetter, word: "ruok", reply: stuck}))
	waitUntil("livez fails", func() bool { code, _ := get("/livez"); return code == http.StatusServiceUnavailable })
	_, body := get("/livez")
	require.Contains(t, body, "event loop stalled")
	<-stuck
	waitUntil("livez recovers", func() bool { code, _ := get("/livez"); return code == http.StatusOK })

	s.stop()
	ok, reason := s.ready()
	require.False(t, ok)
	require.Equal(t, "shutting down", reason)
	cancel()
	require.NoError(t, <-done)
}

func TestLivenessTimeoutCoversSlowTicks(t *testing.T) {
	require.Equal(t, DefaultLivenessTimeout, livenessTimeout(DefaultTickTime))
	require.Equal(t, 3*time.Minute, livenessTimeout(60000))
}

func TestReadinessOf(t *testing.T) {
	for _, tc := range []struct {
		name                          string
		standalone, readOnly, serving bool
		st                            zab.Status
		ok                            bool
		reason                        string
	}{
		{name: "standalone", standalone: true, ok: true},
		{name: "leader", serving: true, st: zab.Status{Role: zab.Leading, Established: true}, ok: true},
		{name: "follower", serving: true, st: zab.Status{Role: zab.Following, Established: true}, ok: true},
		{name: "observer", serving: true, st: zab.Status{Role: zab.Observing, Established: true}, ok: true},
		{name: "looking", st: zab.Status{Role: zab.Looking}, reason: "looking"},
		{name: "read-only", readOnly: true, serving: true, st: zab.Status{Role: zab.Looking}, reason: "read-only"},
		{name: "leader waiting for its quorum", st: zab.Status{Role: zab.Leading}, reason: "syncing"},
		{name: "follower before UPTODATE", st: zab.Status{Role: zab.Following}, reason: "syncing"},
		{name: "established, not yet serving", st: zab.Status{Role: zab.Following, Established: true}, reason: "syncing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := readinessOf(tc.standalone, tc.readOnly, tc.serving, tc.st)
			require.Equal(t, tc.ok, r.ok)
			if !tc.ok {
				require.True(t, strings.HasPrefix(r.reason, tc.reason+": "), r.reason)
			}
		})
	}
}
