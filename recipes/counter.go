package recipes

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"
)

// AtomicLong is a shared counter with Curator's DistributedAtomicLong
// semantics and format: the value is 8 bytes, big-endian, in one znode; an
// absent or empty znode reads as 0; every change is an optimistic
// compare-and-set on the znode's version, retried until it wins.
type AtomicLong struct {
	c    *Client
	path string
}

// NewAtomicLong returns the counter at path.
func NewAtomicLong(c *Client, path string) (*AtomicLong, error) {
	if err := validatePath(path); err != nil {
		return nil, err
	}
	return &AtomicLong{c: c, path: path}, nil
}

func (a *AtomicLong) decode(data []byte) (int64, error) {
	switch len(data) {
	case 0:
		return 0, nil
	case 8:
		return int64(binary.BigEndian.Uint64(data)), nil
	}
	return 0, fmt.Errorf("recipes: counter %s holds %d bytes, not an 8-byte big-endian long", a.path, len(data))
}

func encodeLong(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

// read returns the value, the znode's version and whether it exists.
func (a *AtomicLong) read() (int64, int32, bool, error) {
	data, stat, err := a.c.conn.Get(a.path)
	if errors.Is(err, zk.ErrNoNode) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("recipes: read counter %s: %w", a.path, err)
	}
	v, err := a.decode(data)
	return v, stat.Version, true, err
}

// Get returns the current value.
func (a *AtomicLong) Get(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	v, _, _, err := a.read()
	return v, err
}

// Add adds delta and returns the values before and after.
func (a *AtomicLong) Add(ctx context.Context, delta int64) (pre, post int64, err error) {
	return a.modify(ctx, func(v int64) int64 { return v + delta })
}

// Increment adds one and returns the new value.
func (a *AtomicLong) Increment(ctx context.Context) (int64, error) {
	_, post, err := a.Add(ctx, 1)
	return post, err
}

// Decrement subtracts one and returns the new value.
func (a *AtomicLong) Decrement(ctx context.Context) (int64, error) {
	_, post, err := a.Add(ctx, -1)
	return post, err
}

// modify applies fn with compare-and-set until it wins or ctx is done.
func (a *AtomicLong) modify(ctx context.Context, fn func(int64) int64) (int64, int64, error) {
	for {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		pre, version, exists, err := a.read()
		if err != nil {
			return 0, 0, err
		}
		post := fn(pre)
		if exists {
			_, err = a.c.conn.Set(a.path, encodeLong(post), version)
		} else {
			_, err = a.c.create(a.path, encodeLong(post), zk.FlagPersistent)
		}
		switch {
		case err == nil:
			return pre, post, nil
		case errors.Is(err, zk.ErrBadVersion), errors.Is(err, zk.ErrNodeExists), errors.Is(err, zk.ErrNoNode):
			continue // lost the race: read again
		default:
			return 0, 0, fmt.Errorf("recipes: update counter %s: %w", a.path, err)
		}
	}
}

// CompareAndSet sets the value to next if it is expected, as Curator's
// compareAndSet: it fails (false) when the counter does not exist yet or
// another writer changed it in between.
func (a *AtomicLong) CompareAndSet(ctx context.Context, expected, next int64) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	cur, version, exists, err := a.read()
	if err != nil {
		return false, err
	}
	if !exists || cur != expected {
		return false, nil
	}
	_, err = a.c.conn.Set(a.path, encodeLong(next), version)
	if errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNoNode) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("recipes: compare-and-set counter %s: %w", a.path, err)
	}
	return true, nil
}

// Set sets the value whatever it was, even a corrupt one (Curator's
// forceSet).
func (a *AtomicLong) Set(ctx context.Context, v int64) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		_, err := a.c.conn.Set(a.path, encodeLong(v), -1)
		if errors.Is(err, zk.ErrNoNode) {
			_, err = a.c.create(a.path, encodeLong(v), zk.FlagPersistent)
			if errors.Is(err, zk.ErrNodeExists) {
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("recipes: set counter %s: %w", a.path, err)
		}
		return nil
	}
}

// Initialize sets the value only if the counter does not exist yet, and
// reports whether it did.
func (a *AtomicLong) Initialize(ctx context.Context, v int64) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	_, err := a.c.create(a.path, encodeLong(v), zk.FlagPersistent)
	if errors.Is(err, zk.ErrNodeExists) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("recipes: initialize counter %s: %w", a.path, err)
	}
	return true, nil
}
