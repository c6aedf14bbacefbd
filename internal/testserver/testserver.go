// Package testserver starts an in-process zabkeeper server for tests: the
// recipes, the examples, the server's external tests and the tools'. The
// server package's internal tests cannot import it (a cycle).
package testserver

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zabkeeper/zabkeeper/server"
)

// stopTimeout bounds how long Stop waits for Serve to return.
const stopTimeout = 10 * time.Second

// Server is a running in-process zabkeeper server.
type Server struct {
	// Addr is the client address, host:port on loopback.
	Addr string
	// Srv is the server itself, for its other addresses (SecureAddr,
	// AdminAddr) and its state.
	Srv  *server.Server
	stop func()
}

// Stop cancels Serve and waits for it to return; it is also run by the
// test's cleanup, and later calls do nothing.
func (s *Server) Stop() { s.stop() }

// Config is the configuration Start uses: a private data directory, a free
// port on loopback and the given tickTime (so session expiry tests can use
// short sessions; 0 keeps ZooKeeper's default of 2000 ms).
func Config(t testing.TB, tickTimeMs int) server.Config {
	cfg := server.DefaultConfig()
	cfg.AdminServerAddress, cfg.AdminServerPort = "127.0.0.1", 0 // a free port: tests run side by side
	dir := t.TempDir()
	cfg.DataDir, cfg.DataLogDir = dir, dir
	cfg.ClientPort = 0
	cfg.ClientPortAddress = "127.0.0.1"
	if tickTimeMs > 0 {
		cfg.TickTime = tickTimeMs
		cfg.MinSessionTimeout = 2 * tickTimeMs
		cfg.MaxSessionTimeout = 20 * 2000
	}
	cfg.MaxClientCnxns = 0
	cfg.FourLetterWords = map[string]bool{"ruok": true, "srvr": true}
	return cfg
}

// Start runs a zabkeeper server with cfg until the test ends, logging
// warnings (everything with ZABKEEPER_TEST_DEBUG set) into the test log.
func Start(t testing.TB, cfg server.Config) *Server {
	t.Helper()
	return StartLogged(t, cfg, Logger(t, slog.LevelWarn))
}

// StartLogged is Start with the server's logger chosen by the caller.
func StartLogged(t testing.TB, cfg server.Config, log *slog.Logger) *Server {
	t.Helper()
	srv, err := server.New(cfg, log)
	if err != nil {
		t.Fatalf("testserver: new server: %v", err)
	}
	return Serve(t, srv)
}

// Serve runs a server the test built itself until the test ends (or
// Stop): Serve must return nil within stopTimeout of the cancellation.
func Serve(t testing.TB, srv *server.Server) *Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("testserver: Serve returned %v", err)
				}
			case <-time.After(stopTimeout):
				t.Errorf("testserver: Serve did not return within %v of cancellation", stopTimeout)
			}
		})
	}
	t.Cleanup(stop)
	tcp, ok := srv.Addr().(*net.TCPAddr)
	if !ok {
		t.Fatalf("testserver: Addr() = %T, want *net.TCPAddr", srv.Addr())
	}
	return &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(tcp.Port)), Srv: srv, stop: stop}
}

// Logger writes a server's log into the test log at level (debug with
// ZABKEEPER_TEST_DEBUG set), dropping lines that arrive after the test ends.
func Logger(t testing.TB, level slog.Level) *slog.Logger {
	if os.Getenv("ZABKEEPER_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(NewLogWriter(t), &slog.HandlerOptions{Level: level}))
}

// LogWriter forwards writes to t.Logf until the test's cleanup runs; later
// writes (from goroutines that outlive the test) are dropped instead of
// panicking the test binary.
type LogWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

// NewLogWriter returns a LogWriter for t.
func NewLogWriter(t testing.TB) *LogWriter {
	w := &LogWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return w
}

// Printf logs one line (go-zk's Logger interface).
func (w *LogWriter) Printf(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Logf(format, args...)
	}
}

// Write logs p as one line (io.Writer, for slog handlers).
func (w *LogWriter) Write(p []byte) (int, error) {
	w.Printf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// RunExample runs an example program's run function against a fresh server
// (default tickTime) and checks that its output holds every line of want:
// the one harness the examples under examples/ share.
func RunExample(t *testing.T, want []string, run func(ctx context.Context, addr string, out io.Writer) error) {
	t.Helper()
	addr := Start(t, Config(t, 0)).Addr
	ctx, cancel := context.WithTimeout(context.Background(), exampleTimeout)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, addr, &out); err != nil {
		t.Fatalf("example failed: %v\n%s", err, out.String())
	}
	for _, w := range want {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
}

// exampleTimeout bounds one example's run.
const exampleTimeout = 20 * time.Second
