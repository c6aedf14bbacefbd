package autojoin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"
)

// Client is the part of ZooKeeper's client protocol autojoin needs; the
// go-zk client implements it (Dial), tests fake it.
type Client interface {
	// Config reads /zookeeper/config. With sync it first syncs the
	// server with its leader, so the answer is the ensemble's latest
	// committed configuration rather than a lagging server's.
	Config(sync bool) (Ensemble, error)
	// ConfigW reads /zookeeper/config as the server has it and sets a
	// watch: changed is closed once it changes (or the session fails).
	ConfigW() (e Ensemble, changed <-chan struct{}, err error)
	// Reconfig is an incremental reconfig: joining server.N lines,
	// leaving ids, from the configuration of version from (-1: any). It
	// returns the new configuration's version.
	Reconfig(joining []string, leaving []int, from int64) (int64, error)
	// Close ends the session.
	Close()
}

// Dialer opens a session with one of addrs (client host:port addresses),
// authenticated as digest user:password when digest is not "", giving up
// when ctx ends.
type Dialer func(ctx context.Context, addrs []string, digest string) (Client, error)

// Error codes ZooKeeper answers a reconfig with that go-zk does not name
// (it reports them as "unknown error: N").
const (
	codeUnimplemented      = -6
	codeNewConfigNoQuorum  = -13
	codeReconfigInProgress = -14
)

// ErrReconfigUnsupported is a reconfig the ensemble refuses outright:
// ReconfigDisabled (reconfigEnabled=false) or Unimplemented (a standalone
// server, or a zabkeeper without reconfig). Retrying cannot help.
var ErrReconfigUnsupported = errors.New("the ensemble does not carry out reconfig (reconfigEnabled=false, or a server without reconfig)")

// errorCode is the ZooKeeper error code behind a go-zk error, 0 if none.
func errorCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, zk.ErrBadVersion):
		return -103
	case errors.Is(err, zk.ErrNoAuth):
		return -102
	case errors.Is(err, zk.ErrBadArguments):
		return -8
	case errors.Is(err, zk.ErrReconfigDisabled):
		return -123
	}
	const unknown = "unknown error: "
	var code int
	if s := err.Error(); strings.Contains(s, unknown) {
		code, _ = strconv.Atoi(s[strings.LastIndex(s, unknown)+len(unknown):])
	}
	return code
}

// retryable reports whether a failed reconfig may succeed when tried again
// against a newer configuration: another change in flight
// (ReconfigInProgress), a lost race (BadVersion), a new quorum not yet
// synced (NewConfigNoQuorum), or the connection failing.
func retryable(err error) bool {
	switch errorCode(err) {
	case -103, codeReconfigInProgress, codeNewConfigNoQuorum:
		return true
	case 0:
		return !errors.Is(err, ErrReconfigUnsupported) && !errors.Is(err, ErrRemoved) && !errors.Is(err, errPermanent)
	}
	return false
}

// classify wraps a reconfig error with what it means for the caller.
func classify(err error) error {
	switch errorCode(err) {
	case -123, codeUnimplemented:
		return fmt.Errorf("%w: %v", ErrReconfigUnsupported, err)
	case -102:
		return fmt.Errorf("reconfig not allowed (set zabkeeper.autojoin.digest to a user with ADMIN on /zookeeper/config, the super user by default): %w", err)
	case codeReconfigInProgress:
		return fmt.Errorf("another reconfig is in progress: %w", err)
	case codeNewConfigNoQuorum:
		return fmt.Errorf("the new configuration has no synced quorum yet: %w", err)
	}
	return err
}

// sessionTimeout is the session autojoin asks for: long enough to ride out
// a leader election while it waits.
const sessionTimeout = 20 * time.Second

// Dial is the Dialer over go-zk: it waits until a session is established.
func Dial(logger *slog.Logger) Dialer {
	return func(ctx context.Context, addrs []string, digest string) (Client, error) {
		if len(addrs) == 0 {
			return nil, errors.New("no address to connect to")
		}
		conn, events, err := zk.Connect(addrs, sessionTimeout, zk.WithLogger(zkLogger{logger}), zk.WithLogInfo(false))
		if err != nil {
			return nil, fmt.Errorf("connect %v: %w", addrs, err)
		}
		for {
			select {
			case <-ctx.Done():
				conn.Close()
				return nil, fmt.Errorf("connect %v: %w", addrs, ctx.Err())
			case ev := <-events:
				if ev.State != zk.StateHasSession {
					continue
				}
			}
			break
		}
		if digest != "" {
			if err := conn.AddAuth("digest", []byte(digest)); err != nil {
				conn.Close()
				return nil, fmt.Errorf("authenticate to %v: %w", addrs, err)
			}
		}
		return zkClient{conn}, nil
	}
}

// configPath is the znode holding the ensemble's configuration.
const configPath = "/zookeeper/config"

// zkClient is Client over a go-zk connection.
type zkClient struct{ c *zk.Conn }

func (z zkClient) Config(sync bool) (Ensemble, error) {
	if sync {
		if _, err := z.c.Sync(configPath); err != nil {
			return Ensemble{}, fmt.Errorf("sync %s: %w", configPath, err)
		}
	}
	data, _, err := z.c.Get(configPath)
	if err != nil {
		return Ensemble{}, fmt.Errorf("read %s: %w", configPath, err)
	}
	e, err := ParseEnsemble(string(data))
	if err != nil {
		return Ensemble{}, fmt.Errorf("%s of %s: %w", configPath, z.c.Server(), err)
	}
	return e, nil
}

func (z zkClient) ConfigW() (Ensemble, <-chan struct{}, error) {
	data, _, events, err := z.c.GetW(configPath)
	if err != nil {
		return Ensemble{}, nil, fmt.Errorf("watch %s: %w", configPath, err)
	}
	changed := make(chan struct{})
	go func() {
		<-events // one event per watch: the change, or the connection's end
		close(changed)
	}()
	e, err := ParseEnsemble(string(data))
	if err != nil {
		return Ensemble{}, nil, fmt.Errorf("%s of %s: %w", configPath, z.c.Server(), err)
	}
	return e, changed, nil
}

func (z zkClient) Reconfig(joining []string, leaving []int, from int64) (int64, error) {
	var leave []string
	for _, id := range leaving {
		leave = append(leave, strconv.Itoa(id))
	}
	st, err := z.c.IncrementalReconfig(joining, leave, from)
	if err != nil {
		return 0, classify(err)
	}
	return st.Mzxid, nil
}

func (z zkClient) Close() { z.c.Close() }

// zkLogger sends go-zk's log lines to slog at debug level: its reconnect
// chatter is expected while an ensemble forms.
type zkLogger struct{ l *slog.Logger }

func (z zkLogger) Printf(format string, args ...any) {
	z.l.Debug("zk client: " + fmt.Sprintf(format, args...))
}
