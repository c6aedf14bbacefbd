package recipes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/go-zookeeper/zk"
)

// LeaderLatch is leader election compatible with Curator's LeaderLatch: each
// participant holds an ephemeral sequential znode
// <path>/_c_<uuid>-latch-<seq> whose data is its id, the lowest sequence
// leads, and every other participant watches only its predecessor. Go and
// Curator participants on one path elect one leader between them.
//
// A participant stays in the election until Close; leadership lost to a
// suspended connection is taken up again when the connection comes back in
// the same session while the participant is still first (a new term), and
// after a session expiry the participant rejoins at the end of the line.
type LeaderLatch struct {
	c    *Client
	path string
	id   string
	log  *slog.Logger

	mu      sync.Mutex
	term    context.Context // the current term's leadership, or nil
	endTerm func()
	changed chan struct{} // closed and replaced when a term starts or ends

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// NewLeaderLatch joins the election on path as id and returns at once; the
// latch works in the background until Close. Use Await to wait for
// leadership.
func NewLeaderLatch(c *Client, path, id string) (*LeaderLatch, error) {
	if err := validatePath(path); err != nil {
		return nil, err
	}
	l := &LeaderLatch{
		c: c, path: path, id: id, log: slog.Default().With("recipe", "leaderlatch", "path", path, "id", id),
		changed: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{}),
	}
	go l.run()
	return l, nil
}

// Await waits until this participant leads and returns the term's
// leadership context: it is cancelled the moment leadership may be lost
// (connection suspended, session expired, Client or latch closed), never
// later. After a term ends, Await waits for the next one.
func (l *LeaderLatch) Await(ctx context.Context) (context.Context, error) {
	for {
		l.mu.Lock()
		term, changed := l.term, l.changed
		l.mu.Unlock()
		if term != nil && term.Err() == nil {
			return term, nil
		}
		select {
		case <-changed:
		case <-l.done:
			return nil, ErrClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// IsLeader reports whether this participant leads right now.
func (l *LeaderLatch) IsLeader() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.term != nil && l.term.Err() == nil
}

// Close leaves the election: the term (if any) ends, the participant's
// znode is deleted (in the background if the connection is down) and the
// next participant takes over.
func (l *LeaderLatch) Close() error {
	l.stopOnce.Do(func() { close(l.stop) })
	<-l.done
	return nil
}

// ID returns the participant id given to NewLeaderLatch.
func (l *LeaderLatch) ID() string { return l.id }

// Participant is one member of an election as its znode shows it.
type Participant struct {
	// ID is the participant's id (its znode's data).
	ID string
	// Leader is true for the participant that leads (the first one).
	Leader bool
	// Node is the participant's znode name.
	Node string
}

// Participants lists the election's members in line order, Go and Curator
// alike.
func (l *LeaderLatch) Participants(ctx context.Context) ([]Participant, error) {
	return electionParticipants(ctx, l.c, l.path, latchName)
}

func electionParticipants(ctx context.Context, c *Client, path, name string) ([]Participant, error) {
	nodes, err := participants(c, path, name)
	if err != nil {
		return nil, err
	}
	out := make([]Participant, 0, len(nodes))
	for _, n := range nodes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		data, _, err := c.conn.Get(join(path, n))
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("recipes: read participant %s: %w", n, err)
		}
		out = append(out, Participant{ID: string(data), Node: n})
	}
	if len(out) > 0 {
		out[0].Leader = true
	}
	return out, nil
}

// setTerm starts (term non-nil) or ends the current term.
func (l *LeaderLatch) setTerm(term context.Context, end func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.endTerm != nil {
		l.endTerm()
	}
	l.term, l.endTerm = term, end
	close(l.changed)
	l.changed = make(chan struct{})
}

// run is the latch's loop: make sure our znode exists in the current
// session, then lead while first or watch the predecessor.
func (l *LeaderLatch) run() {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-l.stop
		cancel()
	}()
	var ourPath string
	var ourSession int64
	defer func() {
		l.setTerm(nil, nil)
		if ourPath != "" {
			l.c.deleteEventually(ourPath, ourSession)
		}
		cancel()
		close(l.done)
	}()
	for ctx.Err() == nil {
		g, err := l.c.session(ctx)
		if err != nil {
			return
		}
		if ourPath != "" && ourSession != g.session {
			ourPath = "" // gone with the expired session
		}
		if ourPath == "" {
			p, err := l.c.createProtected(ctx, g, l.path, latchName, []byte(l.id), zk.FlagEphemeralSequential)
			if err != nil {
				if !errors.Is(err, errLost) && ctx.Err() == nil {
					l.log.Warn("join election", "err", err)
					_ = settle(ctx, g)
				}
				continue
			}
			ourPath, ourSession = p, g.session
		}
		children, _, err := l.c.conn.Children(l.path)
		if err != nil {
			if errors.Is(err, zk.ErrNoNode) {
				ourPath = ""
			} else if ctx.Err() == nil {
				_ = settle(ctx, g)
			}
			continue
		}
		sorted := sortParticipants(children, latchName)
		i := indexOf(sorted, ourPath[strings.LastIndexByte(ourPath, '/')+1:])
		switch {
		case i < 0: // deleted under us: rejoin
			ourPath = ""
		case i == 0:
			if g.isLost() {
				continue
			}
			term, end := l.c.ownership(g)
			l.setTerm(term, end)
			select {
			case <-g.lost:
				l.setTerm(nil, nil)
			case <-ctx.Done():
			}
		default:
			_, _, ch, err := l.c.conn.GetW(join(l.path, sorted[i-1]))
			if errors.Is(err, zk.ErrNoNode) {
				continue
			}
			if err != nil {
				_ = settle(ctx, g)
				continue
			}
			_ = wait(ctx, ch, g)
		}
	}
}

// TakeTurns runs lead each time this participant's turn comes, like
// Curator's LeaderSelector with auto-requeue: participants queue on a Mutex
// on path (so they line up with LeaderSelectors there), the one holding it
// leads until lead returns, then it goes to the back of the line. lead's
// context is cancelled the moment leadership may be lost, or when ctx is
// done. TakeTurns returns when ctx is done, or with lead's first error.
func TakeTurns(ctx context.Context, c *Client, path, id string, lead func(ctx context.Context) error) error {
	m, err := NewMutex(c, path, []byte(id))
	if err != nil {
		return err
	}
	for {
		held, err := m.Acquire(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		lctx, cancel := context.WithCancelCause(ctx)
		stop := context.AfterFunc(held, func() { cancel(context.Cause(held)) })
		err = lead(lctx)
		stop()
		cancel(nil)
		if rerr := m.Release(); rerr != nil && err == nil {
			err = rerr
		}
		if err != nil {
			return fmt.Errorf("recipes: leader %s: %w", id, err)
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}
