package loadgen_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/loadgen"
)

// wireLog records, in the order a proxy forwarded them, the notifications
// the server sent and the getData requests the clients sent.
type wireLog struct {
	mu     sync.Mutex
	events []string // "notify" or "getData"
}

func (w *wireLog) add(e string) {
	w.mu.Lock()
	w.events = append(w.events, e)
	w.mu.Unlock()
}

// proxy forwards every connection to addr, logging frames into w; it stops
// when the test ends.
func proxy(t *testing.T, addr string, w *wireLog) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				_ = c.Close()
				continue
			}
			t.Cleanup(func() { _ = c.Close(); _ = s.Close() })
			go pipeFrames(c, s, w, true)
			go pipeFrames(s, c, w, false)
		}
	}()
	return ln.Addr().String()
}

// pipeFrames copies length-prefixed frames from src to dst; after the
// session handshake (the first frame each way) it logs getData requests
// (toServer) or notifications (xid -1) before forwarding them.
func pipeFrames(src, dst net.Conn, w *wireLog, toServer bool) {
	defer func() { _ = dst.Close() }()
	first := true
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(src, hdr[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		body := make([]byte, n)
		if _, err := io.ReadFull(src, body); err != nil {
			return
		}
		if !first && len(body) >= 8 {
			xid := int32(binary.BigEndian.Uint32(body))
			switch {
			case toServer && binary.BigEndian.Uint32(body[4:]) == 4: // getData
				w.add("getData")
			case !toServer && xid == -1:
				w.add("notify")
			}
		}
		first = false
		if _, err := dst.Write(append(hdr[:], body...)); err != nil {
			return
		}
	}
}

// TestFanoutRoundTimesOnlyTheFanout: in the watch workload no watcher sets
// its next watch (a getData) until every watcher of the round has its
// event, with go-zk and with the lean client, so a round times the
// server's fan-out, not the re-arming reads of the watchers notified first
// as well.
func TestFanoutRoundTimesOnlyTheFanout(t *testing.T) {
	for _, client := range []loadgen.Client{loadgen.GoZK, loadgen.Lean} {
		t.Run(string(client), func(t *testing.T) { fanoutTimesOnlyTheFanout(t, client) })
	}
}

func fanoutTimesOnlyTheFanout(t *testing.T, client loadgen.Client) {
	var w wireLog
	addr := proxy(t, startServer(t), &w)
	const watchers = 40
	cfg := loadgen.DefaultConfig()
	cfg.Servers = []string{addr}
	cfg.Client = client
	cfg.Workload = loadgen.WatchFanout
	cfg.Sessions = watchers
	cfg.Duration = 0
	cfg.Ops = 10
	cfg.Warmup = 0
	cfg.ValueSize = 64
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := loadgen.Run(ctx, cfg)
	require.NoError(t, err)
	require.Zero(t, res.ErrorCount, "%v", res.Errors)
	require.Equal(t, string(client), res.Client)
	require.EqualValues(t, 10, res.Ops)

	w.mu.Lock()
	defer w.mu.Unlock()
	rounds, notified := 0, 0
	for i, e := range w.events {
		switch e {
		case "notify":
			notified++
			if notified == watchers { // Sessions watchers, plus one writer
				rounds, notified = rounds+1, 0
			}
		case "getData":
			if notified != 0 {
				t.Fatalf("event %d: a getData while round %d had notified only %d of %d watchers", i, rounds+1, notified, watchers)
			}
		}
	}
	require.GreaterOrEqual(t, rounds, 10, "every round notified every watcher")
	require.Zero(t, notified, "no round left half notified")
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("the run did not end in time")
	}
}
