package recipes

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/go-zookeeper/zk"
)

// Barrier holds processes back while its znode exists (Curator's
// DistributedBarrier): one process sets it, others wait, and removing it
// lets them all go.
type Barrier struct {
	c    *Client
	path string
}

// NewBarrier returns the barrier at path.
func NewBarrier(c *Client, path string) (*Barrier, error) {
	if err := validatePath(path); err != nil {
		return nil, err
	}
	return &Barrier{c: c, path: path}, nil
}

// Set raises the barrier (a persistent znode); setting a raised barrier is
// no error.
func (b *Barrier) Set(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := b.c.create(b.path, nil, zk.FlagPersistent)
	if err != nil && !errors.Is(err, zk.ErrNodeExists) {
		return fmt.Errorf("recipes: set barrier %s: %w", b.path, err)
	}
	return nil
}

// Remove lowers the barrier, releasing every waiter.
func (b *Barrier) Remove(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := b.c.conn.Delete(b.path, -1)
	if err != nil && !errors.Is(err, zk.ErrNoNode) {
		return fmt.Errorf("recipes: remove barrier %s: %w", b.path, err)
	}
	return nil
}

// Wait returns once the barrier is not raised, or with ctx's error.
func (b *Barrier) Wait(ctx context.Context) error {
	for {
		g, err := b.c.session(ctx)
		if err != nil {
			return err
		}
		ok, _, ch, err := b.c.conn.ExistsW(b.path)
		if err != nil {
			if !retryable(err) {
				return fmt.Errorf("recipes: wait on barrier %s: %w", b.path, err)
			}
			if err := settle(ctx, g); err != nil {
				return err
			}
			continue
		}
		if !ok {
			return nil
		}
		if err := wait(ctx, ch, g); err != nil && !errors.Is(err, errLost) {
			return err
		}
	}
}

// readyNode is the double barrier's "everyone is here" znode, as Curator
// names it.
const readyNode = "ready"

// DoubleBarrier lets a fixed number of members start together and finish
// together (Curator's DistributedDoubleBarrier layout: an ephemeral znode
// per member under path, and path/ready once all have entered). Each
// DoubleBarrier value is one member.
type DoubleBarrier struct {
	c       *Client
	path    string
	members int
	id      string
	node    string // our znode while entered
	session int64
}

// NewDoubleBarrier returns one member of a double barrier of members members.
func NewDoubleBarrier(c *Client, path string, members int) (*DoubleBarrier, error) {
	if err := validatePath(path); err != nil {
		return nil, err
	}
	if members < 1 {
		return nil, fmt.Errorf("recipes: double barrier %s: %d members", path, members)
	}
	return &DoubleBarrier{c: c, path: path, members: members, id: newUUID()}, nil
}

// Enter joins and waits until all members have joined. On ctx's error it
// leaves again (best effort).
func (b *DoubleBarrier) Enter(ctx context.Context) error {
	ready := join(b.path, readyNode)
	for {
		g, err := b.c.session(ctx)
		if err != nil {
			return err
		}
		if b.node == "" || b.session != g.session {
			b.node = join(b.path, b.id)
			_, err := b.c.create(b.node, nil, zk.FlagEphemeral)
			if err != nil && !errors.Is(err, zk.ErrNodeExists) {
				if retryable(err) {
					_ = settle(ctx, g)
					continue
				}
				return fmt.Errorf("recipes: enter double barrier %s: %w", b.path, err)
			}
			b.session = g.session
		}
		ok, _, ch, err := b.c.conn.ExistsW(ready)
		if err == nil && ok {
			return nil
		}
		var children []string
		if err == nil {
			children, _, err = b.c.conn.Children(b.path)
		}
		if err != nil {
			if retryable(err) {
				_ = settle(ctx, g)
				continue
			}
			return fmt.Errorf("recipes: enter double barrier %s: %w", b.path, err)
		}
		if len(members(children)) >= b.members {
			_, err := b.c.conn.Create(ready, nil, zk.FlagPersistent, b.c.acl)
			if err == nil || errors.Is(err, zk.ErrNodeExists) {
				return nil
			}
			if !retryable(err) {
				return fmt.Errorf("recipes: open double barrier %s: %w", b.path, err)
			}
			continue
		}
		if err := wait(ctx, ch, g); err != nil && !errors.Is(err, errLost) {
			b.c.deleteEventually(b.node, b.session)
			b.node = ""
			return err
		}
	}
}

// members are a double barrier's children other than the ready znode,
// sorted.
func members(children []string) []string {
	out := make([]string, 0, len(children))
	for _, c := range children {
		if c != readyNode {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

// Leave removes this member and waits until every member has left. The
// last member out removes the ready znode, so the barrier can be used again.
func (b *DoubleBarrier) Leave(ctx context.Context) error {
	ours := b.id
	for {
		g, err := b.c.session(ctx)
		if err != nil {
			return err
		}
		children, _, err := b.c.conn.Children(b.path)
		if errors.Is(err, zk.ErrNoNode) {
			children, err = nil, nil
		}
		if err != nil {
			if retryable(err) {
				_ = settle(ctx, g)
				continue
			}
			return fmt.Errorf("recipes: leave double barrier %s: %w", b.path, err)
		}
		list := members(children)
		i := indexOf(list, ours)
		var watch string
		switch {
		case len(list) == 0:
			b.node = ""
			if err := b.c.conn.Delete(join(b.path, readyNode), -1); err != nil && !errors.Is(err, zk.ErrNoNode) && !retryable(err) {
				return fmt.Errorf("recipes: leave double barrier %s: %w", b.path, err)
			}
			return nil
		case len(list) == 1 && i == 0:
			if err := b.c.conn.Delete(join(b.path, ours), -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
				if retryable(err) {
					_ = settle(ctx, g)
				}
				continue
			}
			continue // and remove the ready znode
		case i == 0:
			watch = list[len(list)-1] // the lowest waits for the highest
		default:
			if i > 0 {
				if err := b.c.conn.Delete(join(b.path, ours), -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
					if retryable(err) {
						_ = settle(ctx, g)
					}
					continue
				}
			}
			watch = list[0] // then wait for the lowest
		}
		ok, _, ch, err := b.c.conn.ExistsW(join(b.path, watch))
		if err != nil || !ok {
			continue
		}
		if err := wait(ctx, ch, g); err != nil && !errors.Is(err, errLost) {
			return err
		}
	}
}

// Queue is a FIFO queue of byte items: each item is a persistent sequential
// znode <path>/queue-<seq>, and Take removes the lowest one. Items survive
// the producer's session. The node format is not Curator's DistributedQueue
// (which packs items in its own serialization).
type Queue struct {
	c    *Client
	path string
}

// queueName is the prefix of queue item znodes.
const queueName = "queue-"

// NewQueue returns the queue at path.
func NewQueue(c *Client, path string) (*Queue, error) {
	if err := validatePath(path); err != nil {
		return nil, err
	}
	return &Queue{c: c, path: path}, nil
}

// Put appends an item and returns its znode path.
func (q *Queue) Put(ctx context.Context, item []byte) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	p, err := q.c.create(join(q.path, queueName), item, zk.FlagSequence)
	if err != nil {
		return "", fmt.Errorf("recipes: put on queue %s: %w", q.path, err)
	}
	return p, nil
}

// Poll takes the first item if there is one. Like Take, an item whose
// delete fails with a connection error of unknown outcome is reported as an
// error and may have been taken (at most once delivery).
func (q *Queue) Poll(ctx context.Context) ([]byte, bool, error) {
	item, ok, _, err := q.take(ctx, false)
	return item, ok, err
}

// Take waits for an item and removes it.
func (q *Queue) Take(ctx context.Context) ([]byte, error) {
	for {
		g, err := q.c.session(ctx)
		if err != nil {
			return nil, err
		}
		item, ok, ch, err := q.take(ctx, true)
		if err != nil || ok {
			return item, err
		}
		if err := wait(ctx, ch, g); err != nil && !errors.Is(err, errLost) {
			return nil, err
		}
	}
}

// take tries the items in order; with watch it leaves a children watch when
// the queue is empty.
func (q *Queue) take(ctx context.Context, watch bool) ([]byte, bool, <-chan zk.Event, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, false, nil, err
		}
		var children []string
		var ch <-chan zk.Event
		var err error
		if watch {
			children, _, ch, err = q.c.conn.ChildrenW(q.path)
			if errors.Is(err, zk.ErrNoNode) {
				if err := q.c.ensurePath(q.path); err != nil {
					return nil, false, nil, err
				}
				continue
			}
		} else {
			children, _, err = q.c.conn.Children(q.path)
			if errors.Is(err, zk.ErrNoNode) {
				return nil, false, nil, nil
			}
		}
		if err != nil {
			return nil, false, nil, fmt.Errorf("recipes: list queue %s: %w", q.path, err)
		}
		items := sortParticipants(children, queueName)
		for _, name := range items {
			p := join(q.path, name)
			data, stat, err := q.c.conn.Get(p)
			if errors.Is(err, zk.ErrNoNode) {
				continue
			}
			if err != nil {
				return nil, false, nil, fmt.Errorf("recipes: read queue item %s: %w", p, err)
			}
			err = q.c.conn.Delete(p, stat.Version)
			if errors.Is(err, zk.ErrNoNode) {
				continue // another consumer took it
			}
			if err != nil {
				return nil, false, nil, fmt.Errorf("recipes: take queue item %s: %w", p, err)
			}
			return data, true, nil, nil
		}
		return nil, false, ch, nil
	}
}

// Len returns the number of items in the queue.
func (q *Queue) Len(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	children, _, err := q.c.conn.Children(q.path)
	if errors.Is(err, zk.ErrNoNode) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("recipes: list queue %s: %w", q.path, err)
	}
	return len(children), nil
}
