package recipes

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-zookeeper/zk"
)

// Semaphore hands out at most maxLeases leases at a time, compatible with
// Curator's InterProcessSemaphoreV2: a lease is an ephemeral sequential
// znode <path>/leases/_c_<uuid>-lease-<seq>, created while holding the Mutex
// <path>/locks, and it is granted while there are at most maxLeases lease
// znodes. Every participant must use the same maxLeases.
type Semaphore struct {
	c    *Client
	path string
	max  int
	data []byte
}

// Lease is one granted lease of a Semaphore.
type Lease struct {
	c       *Client
	path    string
	session int64
	ctx     context.Context
	release func()
}

// NewSemaphore returns a semaphore on path with maxLeases leases; data is
// stored in the lease znodes.
func NewSemaphore(c *Client, path string, maxLeases int, data []byte) (*Semaphore, error) {
	if err := validatePath(path); err != nil {
		return nil, err
	}
	if maxLeases < 1 {
		return nil, fmt.Errorf("recipes: semaphore %s: maxLeases %d < 1", path, maxLeases)
	}
	return &Semaphore{c: c, path: path, max: maxLeases, data: data}, nil
}

// Acquire waits for a lease. The Lease's Context is cancelled the moment
// the lease may be lost (connection suspended, session expired) or when it
// is released.
func (s *Semaphore) Acquire(ctx context.Context) (*Lease, error) {
	for {
		l, err := s.try(ctx)
		if errors.Is(err, errNodeGone) || errors.Is(err, errLost) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("recipes: acquire lease on %s: %w", s.path, err)
		}
		return l, nil
	}
}

// try runs one attempt under the locks/ mutex.
func (s *Semaphore) try(ctx context.Context) (*Lease, error) {
	lock, err := NewMutex(s.c, join(s.path, "locks"), nil)
	if err != nil {
		return nil, err
	}
	if _, err := lock.Acquire(ctx); err != nil {
		return nil, err
	}
	defer func() { _ = lock.Release() }()
	g, err := s.c.session(ctx)
	if err != nil {
		return nil, err
	}
	leases := join(s.path, "leases")
	path, err := s.c.createProtected(ctx, g, leases, leaseName, s.data, zk.FlagEphemeralSequential)
	if err != nil {
		return nil, err
	}
	ours := path[strings.LastIndexByte(path, '/')+1:]
	session := g.session
	for {
		if g.isLost() {
			ng, err := s.c.session(ctx)
			if err == nil && ng.session != session {
				err = errLost
			}
			if err != nil {
				s.c.deleteEventually(path, session)
				return nil, err
			}
			g = ng
		}
		children, _, ch, err := s.c.conn.ChildrenW(leases)
		if err != nil {
			if retryable(err) {
				if err := settle(ctx, g); err != nil {
					s.c.deleteEventually(path, session)
					return nil, err
				}
				continue
			}
			s.c.deleteEventually(path, session)
			return nil, fmt.Errorf("list %s: %w", leases, err)
		}
		if indexOf(children, ours) < 0 {
			return nil, errNodeGone
		}
		if len(children) <= s.max {
			if g.isLost() {
				continue
			}
			octx, release := s.c.ownership(g)
			return &Lease{c: s.c, path: path, session: session, ctx: octx, release: release}, nil
		}
		if err := wait(ctx, ch, g); err != nil && !errors.Is(err, errLost) {
			s.c.deleteEventually(path, session)
			return nil, err
		}
	}
}

// Leases lists the lease znodes currently granted or waiting.
func (s *Semaphore) Leases(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return participants(s.c, join(s.path, "leases"), leaseName)
}

// Context is cancelled the moment the lease may be lost, or on Release.
func (l *Lease) Context() context.Context { return l.ctx }

// Node is the lease's znode path.
func (l *Lease) Node() string { return l.path }

// Release gives the lease back: its znode is deleted (in the background
// through connection losses, for as long as its session lives).
func (l *Lease) Release() {
	l.release()
	l.c.deleteEventually(l.path, l.session)
}
