package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
)

// rotatingHosts is a zk.HostProvider that starts at a chosen server and
// then cycles through the list in order, so that N sessions spread evenly
// and identically over the servers on every run (go-zk's default provider
// shuffles, which makes two runs differ in load balance).
type rotatingHosts struct {
	mu      sync.Mutex
	servers []string
	next    int
	tried   int
}

func (h *rotatingHosts) Init(servers []string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(servers) == 0 {
		return errors.New("loadgen: no servers")
	}
	h.servers = append([]string(nil), servers...)
	h.next %= len(h.servers)
	return nil
}

func (h *rotatingHosts) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.servers)
}

func (h *rotatingHosts) Next() (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.servers[h.next]
	h.next = (h.next + 1) % len(h.servers)
	h.tried++
	return s, h.tried > len(h.servers)
}

func (h *rotatingHosts) Connected() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tried = 0
}

// zkLogger sends go-zk's messages to slog at debug level.
type zkLogger struct{ l *slog.Logger }

func (z zkLogger) Printf(format string, args ...any) {
	z.l.Debug(fmt.Sprintf(format, args...), "component", "go-zk")
}

// Dial opens a session that starts at servers[first mod len] and waits
// until the server has granted it (or ctx ends).
func Dial(ctx context.Context, servers []string, first int, timeout time.Duration, logger *slog.Logger) (*zk.Conn, error) {
	return DialTLS(ctx, servers, first, timeout, logger, nil)
}

// DialTLS is Dial over TLS with tlsCfg (nil: plain TCP).
func DialTLS(ctx context.Context, servers []string, first int, timeout time.Duration, logger *slog.Logger, tlsCfg *tls.Config) (*zk.Conn, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	hosts := &rotatingHosts{next: first}
	dial := net.DialTimeout // go-zk's own default
	if tlsCfg != nil {
		dial = func(network, address string, timeout time.Duration) (net.Conn, error) {
			return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, network, address, tlsCfg)
		}
	}
	c, events, err := zk.Connect(servers, timeout, zk.WithHostProvider(hosts), zk.WithDialer(dial),
		zk.WithLogger(zkLogger{logger}), zk.WithLogInfo(false))
	if err != nil {
		return nil, fmt.Errorf("loadgen: connect %v: %w", servers, err)
	}
	for {
		select {
		case ev := <-events:
			if ev.State == zk.StateHasSession {
				// go-zk keeps sending session events; drain them so the
				// channel never fills up and stalls its event loop.
				go func() {
					for range events {
					}
				}()
				return c, nil
			}
			if ev.State == zk.StateAuthFailed {
				c.Close()
				return nil, fmt.Errorf("loadgen: connect %v: authentication failed", servers)
			}
		case <-ctx.Done():
			c.Close()
			return nil, fmt.Errorf("loadgen: connect %v: no session: %w", servers, ctx.Err())
		}
	}
}

// ensurePath creates every missing znode on the way to path.
func ensurePath(c *zk.Conn, path string) error {
	for i := 1; i <= len(path); i++ {
		if i < len(path) && path[i] != '/' {
			continue
		}
		p := path[:i]
		if _, err := c.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("loadgen: create %s: %w", p, err)
		}
	}
	return nil
}
