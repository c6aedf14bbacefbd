package recipes_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/internal/testserver"
	"github.com/zabkeeper/zabkeeper/internal/zkreal"
	"github.com/zabkeeper/zabkeeper/netstub"
	"github.com/zabkeeper/zabkeeper/recipes"
)

const (
	// waitTimeout bounds every wait; generous for -race on 2 busy cores.
	waitTimeout = 20 * time.Second
	// sessionTimeout is what ordinary test clients ask for.
	sessionTimeout = 10 * time.Second
	// shortSession is the session timeout of clients whose sessions a test
	// lets expire.
	shortSession = 2 * time.Second
	// tickMs is the servers' tickTime: short, so short sessions are allowed.
	tickMs = 100
)

// eachServer runs fn against an in-process zabkeeper started for this test
// and against Debian's Apache ZooKeeper (one JVM shared by the package's
// tests, each of which works under paths of its own).
func eachServer(t *testing.T, fn func(t *testing.T, addr string)) {
	t.Run("zabkeeper", func(t *testing.T) {
		fn(t, testserver.Start(t, testserver.Config(t, tickMs)).Addr)
	})
	t.Run("zookeeper", func(t *testing.T) {
		fn(t, sharedZooKeeper(t))
	})
}

// zooKeeper is the package's shared Apache ZooKeeper; TestMain stops it.
var zooKeeper struct {
	once sync.Once
	dir  string
	srv  *zkreal.Server
	err  error
}

func sharedZooKeeper(t *testing.T) string {
	t.Helper()
	zkreal.Require(t)
	zooKeeper.once.Do(func() {
		zooKeeper.dir, zooKeeper.err = os.MkdirTemp("", "recipes-zookeeper-")
		if zooKeeper.err == nil {
			zooKeeper.srv, zooKeeper.err = zkreal.Launch(zooKeeper.dir, zkreal.Options{DataDir: filepath.Join(zooKeeper.dir, "data"), TickTimeMs: tickMs,
				Config: map[string]string{"maxSessionTimeout": "40000"}})
		}
	})
	require.NoError(t, zooKeeper.err, "starting Apache ZooKeeper")
	return zooKeeper.srv.Addr
}

// stopShared stops what the package's tests share (TestMain runs it).
func stopShared() {
	if zooKeeper.srv != nil {
		zooKeeper.srv.Stop()
	}
	if zooKeeper.dir != "" {
		_ = os.RemoveAll(zooKeeper.dir)
	}
	if javaClasses.dir != "" {
		_ = os.RemoveAll(javaClasses.dir)
	}
}

// connect opens a recipes Client to addr with the given session timeout and
// waits until it has a session.
func connect(t testing.TB, addr string, timeout time.Duration) *recipes.Client {
	t.Helper()
	l := testserver.NewLogWriter(t)
	c, err := recipes.Connect([]string{addr}, timeout, zk.WithLogger(l), zk.WithLogInfo(false))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	waitFor(t, "a session", c.Connected)
	return c
}

// partitioned is a client behind a proxy the test can cut.
type partitioned struct {
	*recipes.Client
	proxy *netstub.Proxy
}

// connectProxied connects through a fault-injecting proxy to addr with a
// short session, so the test can let the session expire.
func connectProxied(t testing.TB, addr string) partitioned {
	t.Helper()
	return connectProxiedTimeout(t, addr, shortSession)
}

// connectProxiedTimeout is connectProxied with a chosen session timeout.
func connectProxiedTimeout(t testing.TB, addr string, timeout time.Duration) partitioned {
	t.Helper()
	p, err := netstub.NewProxy("127.0.0.1:0", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return partitioned{Client: connect(t, p.Addr(), timeout), proxy: p}
}

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ctxT is a context bounded by waitTimeout.
func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// requireDone fails unless ctx is (or soon becomes) done with cause.
func requireDone(t testing.TB, ctx context.Context, cause error, what string) {
	t.Helper()
	select {
	case <-ctx.Done():
		require.ErrorIs(t, context.Cause(ctx), cause, what)
	case <-time.After(waitTimeout):
		t.Fatalf("%s: ownership context still live after %v", what, waitTimeout)
	}
}

// requireLive fails if ctx is done.
func requireLive(t testing.TB, ctx context.Context, what string) {
	t.Helper()
	require.NoError(t, ctx.Err(), "%s: ownership context cancelled (%v)", what, context.Cause(ctx))
}

var pathSeq atomic.Int64

// uniquePath returns a fresh znode path for one test case.
func uniquePath(name string) string {
	return fmt.Sprintf("/recipes-test/%s-%d", name, pathSeq.Add(1))
}
