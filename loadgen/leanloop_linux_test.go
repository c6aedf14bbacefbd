package loadgen

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/internal/testserver"
	"github.com/zabkeeper/zabkeeper/proto"
)

// leanTestServer runs an in-process zabkeeper on a free loopback port.
func leanTestServer(t *testing.T) *testserver.Server {
	t.Helper()
	cfg := testserver.Config(t, 0)
	cfg.MaxClientCnxns = 0
	return testserver.StartLogged(t, cfg, slog.New(slog.DiscardHandler))
}

// prepared sets a lean run up as Run does, up to its drive, so a test can
// change something first.
func prepared(t *testing.T, addr string, w Workload, sessions int, ops int64, valueSize int) *runner {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Servers = []string{addr}
	cfg.Client = Lean
	cfg.Workload = w
	cfg.Sessions = sessions
	cfg.Duration = 0
	if ops == 0 {
		cfg.Duration = time.Minute
	}
	cfg.Ops = ops
	cfg.Warmup = 50 * time.Millisecond
	cfg.Timeout = time.Minute
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.ValueSize = valueSize
	require.NoError(t, cfg.Validate())
	r := &runner{cfg: cfg, value: []byte(strings.Repeat("v", cfg.ValueSize)), stop: make(chan struct{}),
		dir: cfg.Root + "/run-" + strings.ReplaceAll(t.Name(), "/", "-")}
	n := sessions
	if w == WatchFanout {
		n++ // the writer
	}
	require.NoError(t, r.connect(context.Background(), n))
	t.Cleanup(r.closeAll)
	require.NoError(t, ensurePath(r.workers[0].conn, r.dir))
	require.NoError(t, r.setup())
	return r
}

// requireCounted checks that every measured op of res is in its histogram
// and in its ops or errors, and that the event loops ran it.
func requireCounted(t *testing.T, r *runner, res *Result, ops int64) {
	t.Helper()
	require.Positive(t, r.leanLoops, "the lean sessions ran on event loops")
	require.Equal(t, ops, res.Ops+res.ErrorCount, "an op-count run measures exactly its ops")
	require.Equal(t, res.Ops, res.hist.TotalCount(), "one latency per successful op")
	require.GreaterOrEqual(t, r.total.Load(), ops, "progress counts warm-up and measured ops")
	var perWorker int64
	for _, w := range r.workers {
		perWorker += w.ops
	}
	require.Equal(t, res.Ops, perWorker)
	require.Greater(t, res.Latency.P50, 0.0)
	require.LessOrEqual(t, res.Latency.P50, res.Latency.Max)
}

// The event loops run create, set, get and mixed to their op count against
// a real server, with no failed request, and do what the workload says
// (create: the znodes exist; set: the values are written).
func TestLeanLoopsRunTheWorkloads(t *testing.T) {
	srv := leanTestServer(t)
	for _, w := range []Workload{Create, Set, Get, Mixed} {
		t.Run(string(w), func(t *testing.T) {
			r := prepared(t, srv.Addr, w, 6, 300, 100)
			res, err := r.drive(context.Background())
			require.NoError(t, err)
			require.Zero(t, res.ErrorCount, "%v", res.Errors)
			requireCounted(t, r, res, 300)
			admin := r.workers[0].conn
			switch w {
			case Create:
				children, _, err := admin.Children(r.dir)
				require.NoError(t, err)
				var created int64
				for _, w := range r.workers {
					created += w.created
				}
				require.EqualValues(t, created, len(children), "every create the run counted exists")
				require.GreaterOrEqual(t, created, int64(300))
			case Set, Mixed:
				for _, w := range r.workers {
					data, _, err := admin.Get(r.ownPath(w.id))
					require.NoError(t, err)
					require.Equal(t, r.value, data)
				}
			}
			r.cleanup(context.Background())
		})
	}
}

// A server's error code is counted under its message, the session pauses
// and goes on, and the run ends without an error, as with a goroutine per
// session.
func TestLeanLoopsCountServerErrors(t *testing.T) {
	srv := leanTestServer(t)
	r := prepared(t, srv.Addr, Set, 4, 200, 100)
	require.NoError(t, r.workers[1].conn.Delete(r.ownPath(1), -1))
	res, err := r.drive(context.Background())
	require.NoError(t, err)
	requireCounted(t, r, res, 200)
	require.Positive(t, res.ErrorCount)
	require.Equal(t, map[string]int64{proto.ErrNoNode.Error(): res.ErrorCount}, res.Errors)
	require.Zero(t, r.workers[1].ops)
	require.Equal(t, res.ErrorCount, r.workers[1].errs)
	r.cleanup(context.Background())
}

// Requests larger than the socket takes at once are sent in parts (the
// rest when epoll says there is room), and replies larger than the read
// buffer (4 KB) are read in parts.
func TestLeanLoopsShortSendsAndSplitReplies(t *testing.T) {
	srv := leanTestServer(t)
	for _, w := range []Workload{Set, Get} {
		t.Run(string(w), func(t *testing.T) {
			r := prepared(t, srv.Addr, w, 2, 20, 200<<10)
			for _, wk := range r.workers {
				tc := wk.lean.nc.(*net.TCPConn)
				require.NoError(t, tc.SetWriteBuffer(4096))
			}
			res, err := r.drive(context.Background())
			require.NoError(t, err)
			require.Zero(t, res.ErrorCount, "%v", res.Errors)
			requireCounted(t, r, res, 20)
			if w == Set {
				require.Positive(t, r.leanShortSends.Load(), "a 200 KB request does not fit a 4 KB send buffer")
			}
			r.cleanup(context.Background())
		})
	}
}

// A connection the server closes ends the run with the session's error, as
// with a goroutine per session: the request outstanding counts as failed.
func TestLeanLoopsReportABrokenConnection(t *testing.T) {
	for _, loops := range []bool{true, false} {
		t.Run(map[bool]string{true: "event loops", false: "goroutines"}[loops], func(t *testing.T) {
			srv := leanTestServer(t)
			r := prepared(t, srv.Addr, Get, 4, 0, 100)
			r.noLeanLoops = !loops
			type result struct {
				res *Result
				err error
			}
			done := make(chan result, 1)
			go func() {
				res, err := r.drive(context.Background())
				done <- result{res, err}
			}()
			deadline := time.Now().Add(30 * time.Second)
			for r.total.Load() < 200 {
				require.True(t, time.Now().Before(deadline), "the run makes progress")
				time.Sleep(time.Millisecond)
			}
			srv.Stop()
			var got result
			select {
			case got = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("the run did not end when its server went away")
			}
			require.Nil(t, got.res)
			require.Error(t, got.err)
			require.Regexp(t, `^loadgen: session [0-3]: loadgen: lean client: read: (EOF|.*connection reset by peer)`, got.err.Error())
			require.Positive(t, r.failed.Load())
			require.Equal(t, loops, r.leanLoops > 0)
		})
	}
}

// The watch workload runs on one event loop: every round counted once, its
// latency recorded, no watcher's getData counted as an op; a run bounded by
// its duration ends although the loop then waits for notifications only.
func TestLeanLoopsRunTheWatchWorkload(t *testing.T) {
	srv := leanTestServer(t)
	r := prepared(t, srv.Addr, WatchFanout, 20, 30, 64)
	res, err := r.drive(context.Background())
	require.NoError(t, err)
	require.Zero(t, res.ErrorCount, "%v", res.Errors)
	require.Equal(t, 1, r.leanLoops)
	requireCounted(t, r, res, 30)
	require.Equal(t, int64(30), r.workers[0].ops, "the writer's rounds are the ops")
	require.Zero(t, r.failed.Load())
	r.cleanup(context.Background())

	r = prepared(t, srv.Addr, WatchFanout, 20, 0, 64)
	r.cfg.Duration = 300 * time.Millisecond
	start := time.Now()
	res, err = r.drive(context.Background())
	require.NoError(t, err)
	require.Less(t, time.Since(start), 20*time.Second, "the run ends at its duration")
	require.Positive(t, res.Ops)
	require.Equal(t, res.Ops, res.hist.TotalCount())
	r.cleanup(context.Background())
}

// A watch round whose notifications never come ends the run with the same
// error with the event loop and with goroutines: a proxy between the
// sessions and the server drops every notification.
func TestLeanLoopsWatchRoundTimesOut(t *testing.T) {
	srv := leanTestServer(t)
	addr := dropNotifications(t, srv.Addr)
	for _, loops := range []bool{true, false} {
		t.Run(map[bool]string{true: "event loop", false: "goroutines"}[loops], func(t *testing.T) {
			r := prepared(t, addr, WatchFanout, 3, 0, 64)
			r.noLeanLoops = !loops
			r.roundTimeout = 300 * time.Millisecond
			res, err := r.drive(context.Background())
			require.Nil(t, res)
			require.EqualError(t, err, "loadgen: watch fan-out: only 0 of 3 watchers were notified within 300ms")
			require.Equal(t, loops, r.leanLoops > 0)
			r.cleanup(context.Background())
		})
	}
}

// dropNotifications forwards connections to addr, dropping the watch
// notifications (xid -1) the server sends after each session's handshake;
// it stops when the test ends.
func dropNotifications(t *testing.T, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	pipe := func(src, dst net.Conn, drop bool) {
		defer func() { _ = dst.Close() }()
		first := true
		for {
			body, err := proto.ReadFrame(src, nil, leanMaxFrame)
			if err != nil {
				return
			}
			if drop && !first && len(body) >= 4 && int32(binary.BigEndian.Uint32(body)) == proto.XidNotification {
				continue
			}
			first = false
			if _, err := dst.Write(proto.AppendFrame(nil, body)); err != nil {
				return
			}
		}
	}
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
			go pipe(c, s, false)
			go pipe(s, c, true)
		}
	}()
	return ln.Addr().String()
}

// A request that cannot be sent (the socket's write side shut) ends the run
// with the session's error, as with a goroutine per session, and the other
// sessions' loops still end.
func TestLeanLoopsReportAFailedSend(t *testing.T) {
	srv := leanTestServer(t)
	for _, loops := range []bool{true, false} {
		t.Run(map[bool]string{true: "event loops", false: "goroutines"}[loops], func(t *testing.T) {
			r := prepared(t, srv.Addr, Get, 4, 0, 100)
			r.noLeanLoops = !loops
			require.NoError(t, r.workers[1].lean.nc.(*net.TCPConn).CloseWrite())
			done := make(chan error, 1)
			go func() {
				_, err := r.drive(context.Background())
				done <- err
			}()
			select {
			case err := <-done:
				require.Error(t, err)
				require.Regexp(t, `^loadgen: session 1: loadgen: lean client: write: write tcp [0-9.:]+->[0-9.:]+: write: broken pipe$`, err.Error())
			case <-time.After(30 * time.Second):
				t.Fatal("the run did not end after a failed send")
			}
			require.Equal(t, loops, r.leanLoops > 0)
			require.Positive(t, r.failed.Load())
			r.cleanup(context.Background())
		})
	}
}
