package netstub

import (
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// proxyTarget is a listener whose accepted connections the test receives.
type proxyTarget struct {
	ln    net.Listener
	conns chan net.Conn
}

func newProxyTarget(t *testing.T) *proxyTarget {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	pt := &proxyTarget{ln: ln, conns: make(chan net.Conn, 16)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			pt.conns <- c
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		close(pt.conns)
		for c := range pt.conns {
			_ = c.Close()
		}
	})
	return pt
}

func (pt *proxyTarget) accept(t *testing.T) net.Conn {
	t.Helper()
	select {
	case c := <-pt.conns:
		t.Cleanup(func() { _ = c.Close() })
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("target accepted no connection")
		return nil
	}
}

func newTestProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := NewProxy("127.0.0.1:0", target)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func dialProxy(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func readExactly(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	buf := make([]byte, n)
	_, err := io.ReadFull(c, buf)
	require.NoError(t, err)
	return string(buf)
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	_, err := io.WriteString(c, s)
	require.NoError(t, err)
}

// assertNothing checks that no byte arrives on c within d (a negative check
// needs some window; d bounds it).
func assertNothing(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(d)))
	var b [1]byte
	n, err := c.Read(b[:])
	require.Equal(t, 0, n, "bytes arrived through a cut direction")
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout(), "connection should stay open: %v", err)
}

// assertClosed checks that c is closed by the far side.
func assertClosed(t *testing.T, c net.Conn) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err := io.ReadAll(c)
	if ne, ok := err.(net.Error); ok {
		require.False(t, ne.Timeout(), "connection still open")
	}
}

func TestProxyForwardsBothWays(t *testing.T) {
	pt := newProxyTarget(t)
	p := newTestProxy(t, pt.ln.Addr().String())
	c := dialProxy(t, p)
	s := pt.accept(t)
	write(t, c, "hello")
	require.Equal(t, "hello", readExactly(t, s, 5))
	write(t, s, "world!")
	require.Equal(t, "world!", readExactly(t, c, 6))
	require.Eventually(t, func() bool { return p.Conns() == 1 }, 10*time.Second, time.Millisecond)
}

func TestProxyCutClosesAndRefusesUntilRestore(t *testing.T) {
	pt := newProxyTarget(t)
	p := newTestProxy(t, pt.ln.Addr().String())
	c := dialProxy(t, p)
	s := pt.accept(t)
	write(t, c, "x")
	require.Equal(t, "x", readExactly(t, s, 1))

	p.Cut()
	assertClosed(t, c)
	assertClosed(t, s)
	require.Equal(t, 0, p.Conns())

	// A new connection is accepted by the kernel but closed at once, and
	// never reaches the target.
	c2 := dialProxy(t, p)
	assertClosed(t, c2)
	select {
	case got := <-pt.conns:
		_ = got.Close()
		t.Fatal("a connection reached the target during a cut")
	default:
	}

	p.Restore()
	c3 := dialProxy(t, p)
	s3 := pt.accept(t)
	write(t, c3, "back")
	require.Equal(t, "back", readExactly(t, s3, 4))
}

func TestProxyCutOneWayHoldsBytesUntilRestore(t *testing.T) {
	for _, dir := range []Direction{ToTarget, FromTarget} {
		t.Run(dir.String(), func(t *testing.T) {
			pt := newProxyTarget(t)
			p := newTestProxy(t, pt.ln.Addr().String())
			c := dialProxy(t, p)
			s := pt.accept(t)
			write(t, c, "a")
			require.Equal(t, "a", readExactly(t, s, 1))

			p.CutOneWay(dir)
			from, to := c, s // the cut direction
			otherFrom, otherTo := s, c
			if dir == FromTarget {
				from, to, otherFrom, otherTo = s, c, c, s
			}
			write(t, from, "held")
			// The other direction still flows, and the sockets stay up.
			write(t, otherFrom, "live")
			require.Equal(t, "live", readExactly(t, otherTo, 4))
			assertNothing(t, to, 200*time.Millisecond)
			require.Equal(t, 1, p.Conns())

			p.Restore()
			require.Equal(t, "held", readExactly(t, to, 4))
		})
	}
}

func TestProxyDelay(t *testing.T) {
	pt := newProxyTarget(t)
	p := newTestProxy(t, pt.ln.Addr().String())
	c := dialProxy(t, p)
	s := pt.accept(t)
	const d = 150 * time.Millisecond
	p.SetDelay(d)
	start := time.Now()
	write(t, c, "slow")
	require.Equal(t, "slow", readExactly(t, s, 4))
	require.GreaterOrEqual(t, time.Since(start), d)

	p.SetDelay(0)
	write(t, s, "fast")
	require.Equal(t, "fast", readExactly(t, c, 4))
}

// TestProxyDelayOneWay: a delay in one direction leaves the other fast.
func TestProxyDelayOneWay(t *testing.T) {
	pt := newProxyTarget(t)
	p := newTestProxy(t, pt.ln.Addr().String())
	c := dialProxy(t, p)
	s := pt.accept(t)
	const d = 300 * time.Millisecond
	p.SetDelayOneWay(FromTarget, d)
	start := time.Now()
	write(t, c, "fast")
	require.Equal(t, "fast", readExactly(t, s, 4))
	require.Less(t, time.Since(start), d, "the dialer's bytes are not delayed")
	start = time.Now()
	write(t, s, "slow")
	require.Equal(t, "slow", readExactly(t, c, 4))
	require.GreaterOrEqual(t, time.Since(start), d, "the target's bytes are")
}

func TestProxyCloseStopsEverything(t *testing.T) {
	pt := newProxyTarget(t)
	before := runtime.NumGoroutine()
	p, err := NewProxy("127.0.0.1:0", pt.ln.Addr().String())
	require.NoError(t, err)
	var clients []net.Conn
	for range 3 {
		c, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second)
		require.NoError(t, err)
		clients = append(clients, c)
		pt.accept(t)
	}
	p.CutOneWay(ToTarget) // a pump blocked on a cut must end too
	write(t, clients[0], "stuck")
	p.SetDelay(time.Hour) // and one sleeping on a delay
	write(t, clients[1], "slow")

	require.NoError(t, p.Close())
	require.NoError(t, p.Close()) // idempotent
	for _, c := range clients {
		assertClosed(t, c)
		_ = c.Close()
	}
	_, err = net.DialTimeout("tcp", p.Addr(), time.Second)
	require.Error(t, err, "listener still open")
	// Close waited for the proxy's goroutines; the ones left may be the
	// runtime's or the target's, which the count before excludes.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: before %d, now %d\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestProxyDialFailureClosesClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	target := ln.Addr().String()
	require.NoError(t, ln.Close()) // nobody listens there now
	p := newTestProxy(t, target)
	c := dialProxy(t, p)
	assertClosed(t, c)
}

// A learner that decided on its leader dials the leader's quorum port
// before the leader listens, and retries the refused connect (ZooKeeper's
// Learner.connectToLeader). Through a proxy with SetDialRetry the dial
// that the target refused is held and forwarded once the target listens,
// instead of being closed: a closed connection sends such a learner back
// to election (TestMixedEnsembleFaults' flake).
func TestProxyDialRetryHoldsUntilTargetListens(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	target := ln.Addr().String()
	require.NoError(t, ln.Close()) // nobody listens there yet
	p := newTestProxy(t, target)
	p.SetDialRetry(10 * time.Second)
	c := dialProxy(t, p)
	write(t, c, "hello")
	// The proxy dials the target once straight away and is refused:
	// the connection must stay open (readable bytes or EOF would fail).
	assertNothing(t, c, 3*dialRetryEvery)

	ln, err = net.Listen("tcp", target)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		sc, err := ln.Accept()
		if err == nil {
			accepted <- sc
		}
	}()
	var sc net.Conn
	select {
	case sc = <-accepted:
		t.Cleanup(func() { _ = sc.Close() })
	case <-time.After(10 * time.Second):
		t.Fatal("the proxy did not dial the target again once it listened")
	}
	require.Equal(t, "hello", readExactly(t, sc, 5))
	write(t, sc, "world")
	require.Equal(t, "world", readExactly(t, c, 5))
}

// Without SetDialRetry, or once its time is up, a refused dial closes
// the accepted connection.
func TestProxyDialRetryGivesUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	target := ln.Addr().String()
	require.NoError(t, ln.Close())
	p := newTestProxy(t, target)
	p.SetDialRetry(4 * dialRetryEvery)
	c := dialProxy(t, p)
	start := time.Now()
	assertClosed(t, c)
	require.GreaterOrEqual(t, time.Since(start), 3*dialRetryEvery, "closed before the retry time was up")
}
