package recipes

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrNotHeld is returned by Release when the lock is not held.
var ErrNotHeld = errors.New("recipes: lock not held")

// Mutex is a distributed lock compatible with Curator's InterProcessMutex:
// its participants are ephemeral sequential znodes named
// <path>/_c_<uuid>-lock-<seq>, the lowest sequence holds the lock, and each
// waiter watches only its predecessor. A Go Mutex and a Curator
// InterProcessMutex on the same path exclude each other.
//
// A Mutex value is one owner: it is reentrant (Acquire while held counts up,
// Release counts down), so goroutines that must exclude each other need a
// Mutex each.
type Mutex struct {
	core lockCore

	turn chan struct{} // one Acquire of this value at a time
	mu   sync.Mutex
	held *holding
}

// holding is a held lock: its znode, how often it was entered, and the
// ownership context.
type holding struct {
	path    string
	session int64
	count   int
	ctx     context.Context
	release func()
}

// NewMutex returns a Mutex on path. data is stored in the participant znode
// (Curator stores the client's address there by default); nil stores
// nothing.
func NewMutex(c *Client, path string, data []byte) (*Mutex, error) {
	if err := validatePath(path); err != nil {
		return nil, err
	}
	return &Mutex{
		core: lockCore{c: c, dir: path, name: mutexName, sortNames: []string{mutexName}, data: data, decide: firstN(1)},
		turn: make(chan struct{}, 1),
	}, nil
}

// Acquire waits until this Mutex holds the lock or ctx is done. The returned
// context is cancelled the moment the lock may be lost (connection suspended,
// session expired, Client closed) or when the last Release runs; its
// context.Cause says which. A reentrant Acquire returns the same context.
func (m *Mutex) Acquire(ctx context.Context) (context.Context, error) {
	select {
	case m.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-m.turn }()
	m.mu.Lock()
	if h := m.held; h != nil {
		if h.ctx.Err() == nil {
			h.count++
			m.mu.Unlock()
			return h.ctx, nil
		}
	}
	m.mu.Unlock()
	path, g, err := m.core.acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("recipes: acquire lock %s: %w", m.core.dir, err)
	}
	octx, release := m.core.c.ownership(g)
	m.mu.Lock()
	if old := m.held; old != nil {
		// An earlier holding whose ownership was lost: its znode (if the
		// session survived) is still ours to remove.
		old.release()
		m.core.c.deleteEventually(old.path, old.session)
	}
	m.held = &holding{path: path, session: g.session, count: 1, ctx: octx, release: release}
	m.mu.Unlock()
	return octx, nil
}

// Release undoes one Acquire; the last one deletes the participant znode
// (retrying in the background through connection losses for as long as the
// session lives) and cancels the ownership context. Release after the
// ownership was lost still counts down and removes the znode.
func (m *Mutex) Release() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.held
	if h == nil {
		return ErrNotHeld
	}
	h.count--
	if h.count > 0 {
		return nil
	}
	m.held = nil
	h.release()
	m.core.c.deleteEventually(h.path, h.session)
	return nil
}

// Held reports whether this Mutex holds the lock with its ownership intact.
func (m *Mutex) Held() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.held != nil && m.held.ctx.Err() == nil
}

// Participants returns the participant znode names on the lock's path in
// lock order (the first one holds it), Go and Curator processes alike.
func (m *Mutex) Participants(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return participants(m.core.c, m.core.dir, m.core.sortNames...)
}
