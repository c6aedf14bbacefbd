package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/go-zookeeper/zk"

	"github.com/zabkeeper/zabkeeper/proto"
)

// Histogram bounds: 1 µs to 10 minutes at 3 significant digits.
const (
	histMinMicros = 1
	histMaxMicros = int64(10 * time.Minute / time.Microsecond)
	histDigits    = 3
)

// cleanupBound bounds the deletion of a run's znodes.
const cleanupBound = 2 * time.Minute

// errorPause is how long a session waits after a failed request before the
// next one, so that a server that is down is not hammered in a busy loop.
const errorPause = 10 * time.Millisecond

// Run executes one load run and returns its result. It returns an error if
// the run could not be set up (no session, no root znode), or if a watch
// notification never came; failed requests during the run are counted in
// the result, not returned.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	r := &runner{cfg: cfg, value: make([]byte, cfg.ValueSize), stop: make(chan struct{})}
	_, _ = rand.Read(r.value)
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	r.dir = cfg.Root + "/run-" + hex.EncodeToString(suffix[:])

	sessions := cfg.Sessions
	if cfg.Workload == WatchFanout {
		sessions++ // the writer
	}
	if err := r.connect(ctx, sessions); err != nil {
		return nil, err
	}
	defer r.closeAll()
	if err := ensurePath(r.workers[0].conn, r.dir); err != nil {
		return nil, err
	}
	if err := r.setup(); err != nil {
		r.cleanup(ctx)
		return nil, err
	}

	res, err := r.drive(ctx)
	if !cfg.Keep {
		r.cleanup(ctx)
	}
	if err != nil {
		return nil, err
	}
	res.Root = r.dir
	return res, nil
}

// runner is the state of one run.
type runner struct {
	cfg     Config
	dir     string
	value   []byte
	workers []*worker
	// admin is, with the lean client, the one go-zk session that sets up
	// and cleans up the run for every worker (their conn).
	admin *zk.Conn
	// leanLoops is how many event loops run the lean sessions (0: a
	// goroutine each; leanloop_linux.go).
	leanLoops int
	// noLeanLoops runs every lean session on its own goroutine (tests).
	noLeanLoops bool
	// leanShortSends counts the requests the event loops sent in parts.
	leanShortSends atomic.Int64
	// roundTimeout, if set, replaces the watch workload's round timeout
	// (tests).
	roundTimeout time.Duration

	measuring atomic.Bool   // the measured phase is on
	stop      chan struct{} // closed when the run must end
	stopOnce  sync.Once
	reserved  atomic.Int64 // measured ops handed out (for the Ops bound)
	finished  atomic.Int64 // measured ops finished, failed ones included
	total     atomic.Int64 // ops finished, warm-up included (for progress)
	failed    atomic.Int64 // failed requests, warm-up included
	fatal     error        // the first error that ends the run, under fatalMu
	fatalMu   sync.Mutex
}

// worker is one session and what it measured.
type worker struct {
	id      int
	conn    *zk.Conn
	lean    *leanConn // the session's lean client, which then runs its loop
	rng     *mrand.Rand
	hist    *hdrhistogram.Histogram
	ops     int64
	errs    int64
	kinds   map[string]int64
	created int64 // znodes c<id>-0..created-1 attempted (Create workload)
}

func (r *runner) connect(ctx context.Context, n int) error {
	// An unreachable server fails the run fast, not at its Timeout.
	ctx, cancel := context.WithTimeout(ctx, max(30*time.Second, 2*r.cfg.SessionTimeout))
	defer cancel()
	r.workers = make([]*worker, n)
	errs := make([]error, n)
	lean := r.cfg.Client == Lean && leanServes(r.cfg.Workload)
	if lean {
		c, err := DialTLS(ctx, r.cfg.Servers, 0, r.cfg.SessionTimeout, r.cfg.Logger, r.cfg.TLS)
		if err != nil {
			return err
		}
		r.admin = c
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{id: i, rng: mrand.New(mrand.NewPCG(uint64(i), 0x5eed)),
				hist: hdrhistogram.New(histMinMicros, histMaxMicros, histDigits), kinds: map[string]int64{}}
			if lean {
				w.conn = r.admin
				w.lean, errs[i] = dialLean(ctx, r.cfg.Servers[i%len(r.cfg.Servers)], r.cfg.SessionTimeout, r.cfg.TLS)
			} else {
				w.conn, errs[i] = DialTLS(ctx, r.cfg.Servers, i, r.cfg.SessionTimeout, r.cfg.Logger, r.cfg.TLS)
			}
			r.workers[i] = w
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		r.closeAll()
		return err
	}
	return nil
}

func (r *runner) closeAll() {
	for _, w := range r.workers {
		if w == nil {
			continue
		}
		if w.lean != nil {
			w.lean.Close()
			w.lean = nil
		}
		if w.conn != nil && w.conn != r.admin {
			w.conn.Close()
		}
		w.conn = nil
	}
	if r.admin != nil {
		r.admin.Close()
		r.admin = nil
	}
}

// path names of the run's znodes.
func (r *runner) ownPath(id int) string      { return fmt.Sprintf("%s/s%d", r.dir, id) }
func (r *runner) multiPath(id, j int) string { return fmt.Sprintf("%s/m%d-%d", r.dir, id, j) }
func (r *runner) createPath(id int, k int64) string {
	return fmt.Sprintf("%s/c%d-%d", r.dir, id, k)
}
func (r *runner) ephemeralPath(id int, k int64) string {
	return fmt.Sprintf("%s/e%d-%d", r.dir, id, k)
}
func (r *runner) fanPath() string { return r.dir + "/fan" }

// setup creates the znodes the workload reads and writes.
func (r *runner) setup() error {
	acl := zk.WorldACL(zk.PermAll)
	switch r.cfg.Workload {
	case Set, Get, Mixed, Multi:
		return r.eachWorker(func(w *worker) error {
			paths := []string{r.ownPath(w.id)}
			if r.cfg.Workload == Multi {
				paths = paths[:0]
				for j := range r.cfg.MultiOps {
					paths = append(paths, r.multiPath(w.id, j))
				}
			}
			for _, p := range paths {
				if _, err := w.conn.Create(p, r.value, 0, acl); err != nil {
					return fmt.Errorf("loadgen: setup create %s: %w", p, err)
				}
			}
			return nil
		})
	case WatchFanout:
		if _, err := r.workers[0].conn.Create(r.fanPath(), r.value, 0, acl); err != nil {
			return fmt.Errorf("loadgen: setup create %s: %w", r.fanPath(), err)
		}
	}
	return nil
}

// eachWorker runs f for every worker concurrently and joins the errors.
func (r *runner) eachWorker(f func(w *worker) error) error {
	errs := make([]error, len(r.workers))
	var wg sync.WaitGroup
	for i, w := range r.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(w)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// end stops the run.
func (r *runner) end() { r.stopOnce.Do(func() { close(r.stop) }) }

func (r *runner) stopped() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

// fail ends the run with err (the first one wins).
func (r *runner) fail(err error) {
	r.fatalMu.Lock()
	if r.fatal == nil {
		r.fatal = err
	}
	r.fatalMu.Unlock()
	r.end()
}

// begin is called before each op: it says whether to go on and whether the
// op is measured. In the measured phase it reserves one of the Ops.
func (r *runner) begin() (goOn, measured bool) {
	if r.stopped() {
		return false, false
	}
	if !r.measuring.Load() {
		return true, false
	}
	if r.cfg.Ops > 0 {
		if r.reserved.Add(1) > r.cfg.Ops {
			return false, false
		}
	}
	return true, true
}

// finish records one op that began at start.
func (r *runner) finish(w *worker, measured bool, start time.Time, err error) {
	r.account(w, measured, time.Since(start), err)
	if err != nil {
		time.Sleep(errorPause)
	}
}

// account counts one finished op of latency lat: the caller pauses the
// session for errorPause after a failed one.
func (r *runner) account(w *worker, measured bool, lat time.Duration, err error) {
	r.total.Add(1)
	if err != nil {
		r.failed.Add(1)
	}
	if !measured {
		return
	}
	if err != nil {
		w.errs++
		w.kinds[err.Error()]++
	} else {
		w.record(lat)
	}
	r.complete()
}

// complete counts one finished measured op and ends the run at the last
// of Ops (every reserved op finishes before the clock stops).
func (r *runner) complete() {
	if r.cfg.Ops > 0 && r.finished.Add(1) >= r.cfg.Ops {
		r.end()
	}
}

// record adds one successful op's latency.
func (w *worker) record(lat time.Duration) {
	w.ops++
	us := max(lat.Microseconds(), histMinMicros)
	_ = w.hist.RecordValue(min(us, histMaxMicros))
}

// drive runs warm-up and the measured phase and collects the result.
func (r *runner) drive(ctx context.Context) (*Result, error) {
	var wg sync.WaitGroup
	switch {
	case r.startLeanDrivers(&wg): // lean sessions on event loops
	case r.cfg.Workload == WatchFanout:
		r.startFanout(&wg)
	default:
		for _, w := range r.workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.loop(w)
			}()
		}
	}
	progressDone, progressExited := make(chan struct{}), make(chan struct{})
	if r.cfg.Progress != nil {
		go func() {
			defer close(progressExited)
			r.progress(progressDone)
		}()
	} else {
		close(progressExited)
	}

	timeout := func() {}
	select {
	case <-time.After(r.cfg.Warmup):
	case <-r.stop:
	case <-ctx.Done():
		r.fail(fmt.Errorf("loadgen: warm-up: %w", ctx.Err()))
	}
	start := time.Now()
	r.measuring.Store(true)
	var deadline <-chan time.Time
	if r.cfg.Duration > 0 {
		t := time.NewTimer(r.cfg.Duration)
		defer t.Stop()
		deadline = t.C
	}
	select {
	case <-deadline:
	case <-r.stop:
	case <-ctx.Done():
		timeout = func() { r.fail(fmt.Errorf("loadgen: run: %w", ctx.Err())) }
	}
	elapsed := time.Since(start)
	r.measuring.Store(false)
	timeout()
	r.end()
	wg.Wait()
	close(progressDone)
	<-progressExited
	if r.fatal != nil {
		return nil, r.fatal
	}
	return r.result(elapsed), nil
}

// loop is one session's closed loop for every workload but WatchFanout.
func (r *runner) loop(w *worker) {
	if w.lean != nil {
		r.leanLoop(w)
		return
	}
	acl := zk.WorldACL(zk.PermAll)
	var k int64 // per-session sequence for Create and Ephemeral
	for {
		goOn, measured := r.begin()
		if !goOn {
			return
		}
		start := time.Now()
		var err error
		switch r.cfg.Workload {
		case Create:
			p := r.createPath(w.id, w.created)
			w.created++
			_, err = w.conn.Create(p, r.value, 0, acl)
		case Set:
			_, err = w.conn.Set(r.ownPath(w.id), r.value, -1)
		case Get:
			_, _, err = w.conn.Get(r.ownPath(w.id))
		case Mixed:
			if w.rng.Float64() < r.cfg.ReadRatio {
				_, _, err = w.conn.Get(r.ownPath(w.id))
			} else {
				_, err = w.conn.Set(r.ownPath(w.id), r.value, -1)
			}
		case Multi:
			ops := make([]any, r.cfg.MultiOps)
			for j := range ops {
				ops[j] = &zk.SetDataRequest{Path: r.multiPath(w.id, j), Data: r.value, Version: -1}
			}
			var resp []zk.MultiResponse
			resp, err = w.conn.Multi(ops...)
			err = multiError(resp, err)
		case Ephemeral:
			p := r.ephemeralPath(w.id, k)
			k++
			_, err = w.conn.Create(p, r.value, zk.FlagEphemeral, acl)
			r.finish(w, measured, start, err)
			if err != nil {
				continue
			}
			if goOn, measured = r.begin(); !goOn {
				_ = w.conn.Delete(p, -1) // do not leave it to session expiry
				return
			}
			start = time.Now()
			err = w.conn.Delete(p, -1)
		}
		r.finish(w, measured, start, err)
	}
}

// leanLoop is loop with the session's lean client (create, set, get and
// mixed): the same requests, paths and values.
func (r *runner) leanLoop(w *worker) {
	own := r.ownPath(w.id)
	for {
		goOn, measured := r.begin()
		if !goOn {
			return
		}
		start := time.Now()
		var err error
		switch r.cfg.Workload {
		case Create:
			p := r.createPath(w.id, w.created)
			w.created++
			err = w.lean.create(p, r.value)
		case Set:
			err = w.lean.set(own, r.value)
		case Get:
			err = w.lean.get(own, len(r.value))
		case Mixed:
			if w.rng.Float64() < r.cfg.ReadRatio {
				err = w.lean.get(own, len(r.value))
			} else {
				err = w.lean.set(own, r.value)
			}
		}
		r.finish(w, measured, start, err)
		if err != nil && !isServerError(err) {
			// The connection is broken or out of step: the lean client
			// does not reconnect, so the run cannot go on honestly.
			r.fail(fmt.Errorf("loadgen: session %d: %w", w.id, err))
			return
		}
	}
}

// isServerError reports whether err is an error code the server answered
// (the session goes on), not a broken connection.
func isServerError(err error) bool {
	var code proto.ErrCode
	return errors.As(err, &code)
}

// multiError is the error of a multi: the transport error, or the first
// failed op's.
func multiError(resp []zk.MultiResponse, err error) error {
	if err != nil {
		return err
	}
	for _, op := range resp {
		if op.Error != nil {
			return op.Error
		}
	}
	return nil
}

// startFanout starts the watchers (workers 1..n) and the writer (worker 0).
// A round: every watcher has a watch set; the writer sets the znode; the
// round's latency is from just before the write until the last watcher
// has its event. A watcher sets its next watch only once the round is over
// (rearm): otherwise the first watchers notified would send their getData
// while the server is still notifying the others, and the round would time
// 1,000 re-arming reads and replies on top of the fan-out, the clients'
// share of the machine as much as the server's. A notified watcher counts
// itself down on the round (fanRound), which wakes the writer once, when
// the last one is in, rather than once per watcher.
//
// With the lean client where its event loop cannot run (over TLS, off
// Linux; leanloop_linux.go runs the same rounds on one loop) a watcher's
// goroutine reads its notification off its own socket (no go-zk receive
// goroutine and channels in between), and the writer writes with its lean
// session too.
func (r *runner) startFanout(wg *sync.WaitGroup) {
	watchers := r.workers[1:]
	armed := make(chan struct{}, len(watchers))
	rearm := make(chan struct{}, len(watchers))
	var round atomic.Pointer[fanRound]
	value := len(r.value)
	for _, w := range watchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !r.stopped() {
				var ch <-chan zk.Event
				var err error
				if w.lean != nil {
					err = w.lean.getW(r.fanPath(), value)
				} else {
					_, _, ch, err = w.conn.GetW(r.fanPath())
				}
				if err != nil {
					if r.stopped() {
						return
					}
					if w.lean != nil && !isServerError(err) {
						r.fail(fmt.Errorf("loadgen: watcher %d: %w", w.id, err))
						return
					}
					r.failed.Add(1)
					time.Sleep(errorPause)
					continue
				}
				armed <- struct{}{}
				if w.lean != nil {
					ev, err := w.lean.nextEvent()
					if err != nil {
						if !r.stopped() {
							r.fail(fmt.Errorf("loadgen: watcher %d: %w", w.id, err))
						}
						return
					}
					if ev.Type != int32(zk.EventNodeDataChanged) {
						r.fail(fmt.Errorf("loadgen: watcher %d: unexpected event %v", w.id, zk.EventType(ev.Type)))
						return
					}
				} else {
					select {
					case ev := <-ch:
						if ev.Type != zk.EventNodeDataChanged {
							r.fail(fmt.Errorf("loadgen: watcher %d: unexpected event %v (%v)", w.id, ev.Type, ev.Err))
							return
						}
					case <-r.stop:
						return
					}
				}
				if fr := round.Load(); fr != nil {
					fr.notified(time.Now())
				}
				select {
				case <-rearm:
				case <-r.stop:
					return
				}
			}
		}()
	}
	if r.cfg.Client == Lean {
		// A lean watcher blocks in its socket's read: the run's end
		// wakes it with an expired deadline.
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-r.stop
			for _, w := range watchers {
				if w.lean != nil {
					_ = w.lean.nc.SetReadDeadline(time.Unix(1, 0))
				}
			}
		}()
	}
	writer := r.workers[0]
	set := func() error {
		if writer.lean != nil {
			return writer.lean.set(r.fanPath(), r.value)
		}
		_, err := writer.conn.Set(r.fanPath(), r.value, -1)
		return err
	}
	roundTimeout := r.fanRoundTimeout()
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTimer(roundTimeout)
		defer t.Stop()
		timedOut := func(n int, what string) {
			r.fail(fmt.Errorf("loadgen: watch fan-out: only %d of %d watchers %s within %v", n, len(watchers), what, roundTimeout))
		}
		for {
			t.Reset(roundTimeout)
			for i := range len(watchers) {
				select {
				case <-armed:
				case <-r.stop:
					return
				case <-t.C:
					timedOut(i, "set their watch")
					return
				}
			}
			goOn, measured := r.begin()
			if !goOn {
				return
			}
			fr := &fanRound{done: make(chan struct{})}
			fr.left.Store(int64(len(watchers)))
			round.Store(fr)
			start := time.Now()
			if err := set(); err != nil {
				// No notification will come: the watches stay armed for the
				// next round, so count them as armed again.
				r.finish(writer, measured, start, err)
				if writer.lean != nil && !isServerError(err) {
					r.fail(fmt.Errorf("loadgen: writer: %w", err))
					return
				}
				for range watchers {
					armed <- struct{}{}
				}
				continue
			}
			t.Reset(roundTimeout)
			select {
			case <-fr.done:
			case <-r.stop:
				return
			case <-t.C:
				timedOut(len(watchers)-int(fr.left.Load()), "were notified")
				return
			}
			r.total.Add(1)
			if measured {
				writer.record(time.Unix(0, fr.last.Load()).Sub(start))
				r.complete()
			}
			for range watchers {
				rearm <- struct{}{}
			}
		}
	}()
}

// fanRoundTimeout bounds a round of the watch workload: one that takes
// longer lost a notification.
func (r *runner) fanRoundTimeout() time.Duration {
	if r.roundTimeout > 0 {
		return r.roundTimeout
	}
	return 2*r.cfg.SessionTimeout + 10*time.Second
}

// fanRound is one round of the watch workload: how many watchers are still
// to be notified and the latest time one was.
type fanRound struct {
	left atomic.Int64
	last atomic.Int64  // unix ns
	done chan struct{} // closed by the last watcher notified
}

// notified records a watcher's notification at at.
func (f *fanRound) notified(at time.Time) {
	ns := at.UnixNano()
	for {
		last := f.last.Load()
		if ns <= last || f.last.CompareAndSwap(last, ns) {
			break
		}
	}
	if f.left.Add(-1) == 0 {
		close(f.done)
	}
}

// progress prints a line a second until done is closed, and a last one
// then (on a terminal, it clears its line instead).
func (r *runner) progress(done <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	begin := time.Now()
	var last int64
	line := func(now time.Time, phase string) string {
		n := r.total.Load()
		l := fmt.Sprintf("%s %5.0fs  ops %d  %.0f ops/s  errors %d  [%s %s]",
			r.cfg.Workload, now.Sub(begin).Seconds(), n, float64(n-last), r.failed.Load(), phase, r.dir)
		last = n
		return l
	}
	for {
		select {
		case <-done:
			if r.cfg.ProgressTTY {
				fmt.Fprint(r.cfg.Progress, "\r\033[K")
			} else {
				fmt.Fprintln(r.cfg.Progress, line(time.Now(), "done"))
			}
			return
		case now := <-t.C:
			phase := "warm-up"
			if r.measuring.Load() {
				phase = "measuring"
			}
			if r.cfg.ProgressTTY {
				fmt.Fprint(r.cfg.Progress, "\r\033[K"+line(now, phase))
			} else {
				fmt.Fprintln(r.cfg.Progress, line(now, phase))
			}
		}
	}
}

// cleanup deletes what the run created. It goes on when ctx was cancelled
// (Ctrl-C should not leave the znodes behind) but never longer than
// cleanupBound: a run must stop by itself even if the server is gone.
func (r *runner) cleanup(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupBound)
	defer cancel()
	_ = r.eachWorker(func(w *worker) error {
		var paths []string
		switch r.cfg.Workload {
		case Set, Get, Mixed:
			paths = append(paths, r.ownPath(w.id))
		case Multi:
			for j := range r.cfg.MultiOps {
				paths = append(paths, r.multiPath(w.id, j))
			}
		case Create:
			for k := range w.created {
				paths = append(paths, r.createPath(w.id, k))
			}
		}
		deleteAll(ctx, w.conn, paths)
		return nil
	})
	c := r.workers[0].conn
	deleteAll(ctx, c, []string{r.fanPath()})
	if err := c.Delete(r.dir, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
		r.cfg.Logger.Warn("loadgen: could not delete the run's root znode", "path", r.dir, "err", err)
	}
	_ = c.Delete(r.cfg.Root, -1) // only if no other run is under it
}

// deleteAll deletes paths in multis of up to 100, falling back to one by
// one where a multi fails (a znode that is already gone fails its multi).
func deleteAll(ctx context.Context, c *zk.Conn, paths []string) {
	const batch = 100
	for len(paths) > 0 && ctx.Err() == nil {
		n := min(batch, len(paths))
		ops := make([]any, n)
		for i, p := range paths[:n] {
			ops[i] = &zk.DeleteRequest{Path: p, Version: -1}
		}
		if err := multiError(c.Multi(ops...)); err != nil {
			for _, p := range paths[:n] {
				if ctx.Err() != nil {
					return
				}
				_ = c.Delete(p, -1)
			}
		}
		paths = paths[n:]
	}
}

// result merges the workers' histograms.
func (r *runner) result(elapsed time.Duration) *Result {
	h := hdrhistogram.New(histMinMicros, histMaxMicros, histDigits)
	res := &Result{
		Workload:  string(r.cfg.Workload),
		Servers:   r.cfg.Servers,
		Sessions:  r.cfg.Sessions,
		ValueSize: r.cfg.ValueSize,
		Seconds:   elapsed.Seconds(),
		Errors:    map[string]int64{},
		Client:    string(GoZK),
	}
	if r.admin != nil {
		res.Client = string(Lean)
	}
	if r.cfg.Workload == Mixed {
		res.ReadRatio = r.cfg.ReadRatio
	}
	if r.cfg.Workload == Multi {
		res.MultiOps = r.cfg.MultiOps
	}
	for _, w := range r.workers {
		h.Merge(w.hist)
		res.Ops += w.ops
		res.ErrorCount += w.errs
		for k, v := range w.kinds {
			res.Errors[k] += v
		}
	}
	if elapsed > 0 {
		res.OpsPerSec = float64(res.Ops) / elapsed.Seconds()
	}
	res.Latency = percentiles(h)
	res.hist = h
	return res
}

// percentiles reads the summary out of a histogram, in milliseconds.
func percentiles(h *hdrhistogram.Histogram) Latency {
	ms := func(us int64) float64 { return math.Round(float64(us)) / 1000 }
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		P50:  ms(h.ValueAtQuantile(50)),
		P90:  ms(h.ValueAtQuantile(90)),
		P99:  ms(h.ValueAtQuantile(99)),
		P999: ms(h.ValueAtQuantile(99.9)),
		Max:  ms(h.Max()),
		Mean: math.Round(h.Mean()) / 1000,
	}
}
