package autojoin

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zabkeeper/zabkeeper/internal/zkreal"
)

// superPassword is the super user's password of the test ensembles.
const superPassword = "autojoin-test"

// superDigestProp is ZooKeeper's superDigest for super:superPassword.
func superDigestProp() string {
	sum := sha1.Sum([]byte("super:" + superPassword))
	return "super:" + base64.StdEncoding.EncodeToString(sum[:])
}

// zkNode is one server of a real ZooKeeper ensemble with reconfig on.
type zkNode struct {
	id               int
	quorum, election int
	client           int
	dir              string
	srv              *zkreal.Server
}

func (n *zkNode) member(observer bool) Member {
	role := "participant"
	if observer {
		role = "observer"
	}
	m, err := ParseMember(n.id, fmt.Sprintf("127.0.0.1:%d:%d:%s;127.0.0.1:%d", n.quorum, n.election, role, n.client))
	if err != nil {
		panic(err)
	}
	return m
}

func (n *zkNode) addr() string { return "127.0.0.1:" + strconv.Itoa(n.client) }

func newZKNode(t *testing.T, id int) *zkNode {
	t.Helper()
	n := &zkNode{id: id, dir: t.TempDir()}
	for _, p := range []*int{&n.quorum, &n.election, &n.client} {
		port, err := zkreal.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		*p = port
	}
	return n
}

// start runs ZooKeeper for n with members e in a dynamic config file,
// reconfig on and the super user's digest set, as ZooKeeper's reconfig
// documentation asks.
func (n *zkNode) start(t *testing.T, e Ensemble) {
	t.Helper()
	var b strings.Builder
	for _, id := range e.IDs() {
		b.WriteString(e.Members[id].Line() + "\n")
	}
	dyn := filepath.Join(n.dir, "zoo.cfg.dynamic."+strconv.FormatInt(e.Version, 16))
	if err := os.WriteFile(dyn, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	srv, err := zkreal.Launch(n.dir, zkreal.Options{
		DataDir: filepath.Join(n.dir, "data"), MyID: n.id, ClientPort: n.client,
		Config: map[string]string{"reconfigEnabled": "true", "dynamicConfigFile": dyn, "standaloneEnabled": "false"},
		Props:  map[string]string{"zookeeper.DigestAuthenticationProvider.superDigest": superDigestProp()},
	})
	if err != nil {
		t.Fatal(err)
	}
	n.srv = srv
	t.Cleanup(srv.Stop)
}

// recorder wraps a Dialer: it counts reconfigs and their retryable
// failures, and with a barrier holds every joiner's first configuration
// read until all have read, so they race from the same version.
type recorder struct {
	dial      Dialer
	reconfigs atomic.Int64
	lost      atomic.Int64
	barrier   *sync.WaitGroup
	racers    map[int]bool
	once      sync.Map
}

func (r *recorder) Dial(self int) Dialer {
	return func(ctx context.Context, addrs []string, digest string) (Client, error) {
		c, err := r.dial(ctx, addrs, digest)
		if err != nil {
			return nil, err
		}
		return &recordingClient{Client: c, r: r, self: self}, nil
	}
}

type recordingClient struct {
	Client
	r    *recorder
	self int
}

func (c *recordingClient) Config(sync bool) (Ensemble, error) {
	e, err := c.Client.Config(sync)
	if c.r.barrier != nil && c.r.racers[c.self] {
		if _, done := c.r.once.LoadOrStore(c.self, true); !done {
			c.r.barrier.Done()
			c.r.barrier.Wait()
		}
	}
	return e, err
}

func (c *recordingClient) Reconfig(joining []string, leaving []int, from int64) (int64, error) {
	c.r.reconfigs.Add(1)
	v, err := c.Client.Reconfig(joining, leaving, from)
	if err != nil && retryable(err) {
		c.r.lost.Add(1)
	}
	return v, err
}

// writer creates sequential znodes until stopped and counts the
// acknowledged ones, failing on any error that is not a connection loss
// (a write lost in flight is not acknowledged).
type writer struct {
	conn  *zk.Conn
	acked atomic.Int64
	stop  chan struct{}
	done  chan error
}

func startWriter(t *testing.T, addrs []string, logger *slog.Logger) *writer {
	t.Helper()
	conn, _, err := zk.Connect(addrs, 30*time.Second, zk.WithLogInfo(false), zk.WithLogger(zkLogger{logger}))
	if err != nil {
		t.Fatal(err)
	}
	w := &writer{conn: conn, stop: make(chan struct{}), done: make(chan error, 1)}
	if _, err := conn.Create("/load", nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
		t.Fatal(err)
	}
	go func() {
		for {
			select {
			case <-w.stop:
				w.done <- nil
				return
			default:
			}
			_, err := conn.Create("/load/n-", []byte("x"), zk.FlagSequence, zk.WorldACL(zk.PermAll))
			switch {
			case err == nil:
				w.acked.Add(1)
			case errors.Is(err, zk.ErrConnectionClosed), errors.Is(err, zk.ErrNoServer):
			default:
				w.done <- err
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return w
}

// finish stops the writer and checks that every acknowledged write is
// there and the session never expired.
func (w *writer) finish(t *testing.T) {
	t.Helper()
	close(w.stop)
	if err := <-w.done; err != nil {
		t.Fatalf("writer: %v", err)
	}
	if st := w.conn.State(); st != zk.StateHasSession {
		t.Fatalf("writer's session state %v, want a session (expired?)", st)
	}
	if _, err := w.conn.Sync("/load"); err != nil {
		t.Fatal(err)
	}
	kids, _, err := w.conn.Children("/load")
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(kids)) < w.acked.Load() || w.acked.Load() == 0 {
		t.Fatalf("%d znodes under /load, %d writes acknowledged", len(kids), w.acked.Load())
	}
	t.Logf("writer: %d writes acknowledged, %d znodes present, session kept", w.acked.Load(), len(kids))
	w.conn.Close()
}

// startZKEnsemble makes n nodes and runs the first three as an ensemble
// with reconfig on; it returns the nodes by id and the three's addresses.
func startZKEnsemble(t *testing.T, n int) (map[int]*zkNode, []string) {
	t.Helper()
	nodes := map[int]*zkNode{}
	initial := Ensemble{Members: map[int]Member{}}
	for id := 1; id <= n; id++ {
		nodes[id] = newZKNode(t, id)
	}
	for id := 1; id <= 3; id++ {
		initial.Members[id] = nodes[id].member(false)
	}
	for id := 1; id <= 3; id++ {
		nodes[id].start(t, initial)
	}
	seeds := []string{nodes[1].addr(), nodes[2].addr(), nodes[3].addr()}
	for id := 1; id <= 3; id++ {
		if _, err := nodes[id].srv.WaitServing(90 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	return nodes, seeds
}

// TestJoinRealZooKeeper runs the joiner against Apache ZooKeeper 3.8 with
// reconfig on: two servers started together (3 -> 5) join as observers
// racing each other, catch up and become participants; a restarted joiner
// changes nothing; Remove takes one out again (5 -> 4); all of it under a
// writer whose every acknowledged write survives in one session.
func TestJoinRealZooKeeper(t *testing.T) {
	zkreal.Require(t)
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	nodes, seeds := startZKEnsemble(t, 5)
	w := startWriter(t, seeds, logger)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	rec := &recorder{dial: Dial(logger), barrier: new(sync.WaitGroup), racers: map[int]bool{4: true, 5: true}}
	rec.barrier.Add(2)
	joiner := func(id int) *Joiner {
		return &Joiner{Self: nodes[id].member(false), Seeds: seeds, Digest: "super:" + superPassword,
			Dial: rec.Dial(id), AttemptTimeout: 20 * time.Second, Logger: logger.With("joiner", id),
			Backoff: &Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second}}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, id := range []int{4, 5} {
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			j := joiner(id)
			e, err := j.Join(ctx)
			if err != nil {
				errs <- fmt.Errorf("join %d: %w", id, err)
				return
			}
			if m := e.Members[id]; !m.Observer {
				errs <- fmt.Errorf("join %d: added as %q, want an observer", id, m.Spec)
				return
			}
			nodes[id].start(t, e)
			if err := j.WaitSynced(ctx, nodes[id].addr(), e.Version); err != nil {
				errs <- fmt.Errorf("server %d: %w", id, err)
				return
			}
			if _, err := j.Promote(ctx, append([]string{nodes[id].addr()}, seeds...)); err != nil {
				errs <- fmt.Errorf("promote %d: %w", id, err)
			}
		}(id)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if rec.lost.Load() == 0 {
		t.Fatalf("the two joiners read the same configuration but no reconfig lost the race (%d reconfigs)", rec.reconfigs.Load())
	}
	t.Logf("3 -> 5: %d reconfigs, %d lost a race and were retried", rec.reconfigs.Load(), rec.lost.Load())
	five, err := joiner(1).Discover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if five.Voters() != 5 || len(five.Members) != 5 {
		t.Fatalf("after both joined: %d members, %d participants, want 5 and 5:\n%s", len(five.Members), five.Voters(), five)
	}
	for _, id := range []int{4, 5} {
		// A promoted observer restarts as a follower: poll for it.
		deadline := time.Now().Add(60 * time.Second)
		for mode := nodes[id].srv.Mode(); mode != "follower" && mode != "leader"; mode = nodes[id].srv.Mode() {
			if time.Now().After(deadline) {
				t.Fatalf("server %d runs as %q, want a follower or the leader", id, mode)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// A restart: server 4 crashes and comes back; its joiner finds it a
	// member and changes nothing.
	nodes[4].srv.Stop()
	before := rec.reconfigs.Load()
	j4 := joiner(4)
	e, err := j4.Join(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nodes[4].start(t, e)
	if _, err := j4.Promote(ctx, seeds); err != nil {
		t.Fatal(err)
	}
	after, err := j4.Discover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := rec.reconfigs.Load() - before; n != 0 || after.Version != five.Version {
		t.Fatalf("restart of a member issued %d reconfigs, configuration %x -> %x; want none", n, five.Version, after.Version)
	}

	// Scale down by one: Remove, then Remove again (nothing to do).
	j := joiner(1)
	four, err := j.Remove(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := four.Members[5]; ok || four.Voters() != 4 {
		t.Fatalf("after removing 5:\n%s", four)
	}
	before = rec.reconfigs.Load()
	if again, err := j.Remove(ctx, 5); err != nil || again.Version != four.Version || rec.reconfigs.Load() != before {
		t.Fatalf("removing a non-member again: %v, version %x -> %x", err, four.Version, again.Version)
	}
	w.finish(t)
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestStartRealZooKeeper runs what `zabkeeper server` runs with autojoin
// (Start: Prepare before the server, Run beside it) for a fourth server
// of a real ZooKeeper ensemble, the server being a ZooKeeper started on
// the members Prepare settled: it is added as an observer, promoted by
// Run, which records the new members; a restart changes nothing; after
// an operator's removal, a restart is refused instead of re-adding it.
func TestStartRealZooKeeper(t *testing.T) {
	zkreal.Require(t)
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	nodes, seeds := startZKEnsemble(t, 4)
	n4 := nodes[4]
	data := filepath.Join(n4.dir, "zabkeeper")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rec := &recorder{dial: Dial(logger)}
	newStart := func() *Start {
		cfg := loadZooCfg(t, data, 4, []string{
			"clientPort=" + strconv.Itoa(n4.client), "clientPortAddress=127.0.0.1",
			"zabkeeper.autojoin=true",
			"zabkeeper.autojoin.server=" + n4.member(false).Spec,
			"zabkeeper.autojoin.seeds=" + strings.Join(seeds, ","),
			"zabkeeper.autojoin.digest=super:" + superPassword,
		})
		return &Start{Config: cfg, Dial: rec.Dial(4), Logger: logger,
			Backoff: &Backoff{Min: 100 * time.Millisecond, Max: 500 * time.Millisecond}}
	}

	s := newStart()
	if err := s.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	if me := s.Config.Servers[4]; !me.Observer || len(s.Config.Servers) != 4 {
		t.Fatalf("Prepare left %d servers, self %+v; want 4 with an observer", len(s.Config.Servers), me)
	}
	saved, _, err := LoadMembers(data)
	if err != nil {
		t.Fatal(err)
	}
	n4.start(t, saved)
	runCtx, stopRun := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() { defer close(ran); s.Run(runCtx) }()
	var final Ensemble
	deadline := time.Now().Add(2 * time.Minute)
	for {
		e, ok, err := LoadMembers(data)
		if err != nil {
			t.Fatal(err)
		}
		if m, in := e.Members[4]; ok && in && !m.Observer {
			final = e
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("members file never named server 4 a participant; last:\n%s", e)
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopRun()
	<-ran
	t.Logf("joined: version %x, %d participants", final.Version, final.Voters())

	// Restart: nothing to do.
	before := rec.reconfigs.Load()
	s = newStart()
	if err := s.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rec.reconfigs.Load() - before; n != 0 || s.promote || s.Config.Dynamic.Version != final.Version {
		t.Fatalf("restart: %d reconfigs, promote %v, version %x; want none, false, %x", n, s.promote, s.Config.Dynamic.Version, final.Version)
	}

	// Removed by an operator, then restarted before the scale-down.
	if _, err := (&Joiner{Seeds: seeds, Digest: "super:" + superPassword, Dial: Dial(logger), Logger: logger}).Remove(ctx, 4); err != nil {
		t.Fatal(err)
	}
	before = rec.reconfigs.Load()
	if err := newStart().Prepare(ctx); !errors.Is(err, ErrRemoved) || rec.reconfigs.Load() != before {
		t.Fatalf("restart after removal: %v, %d reconfigs; want ErrRemoved and none", err, rec.reconfigs.Load()-before)
	}
}
