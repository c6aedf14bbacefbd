package recipes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/go-zookeeper/zk"
)

// ErrVersionConflict is returned by compare-and-set operations when the
// znode's version is not the one expected (or it exists when it should not).
var ErrVersionConflict = errors.New("recipes: version conflict")

// Codec turns a T into znode data and back.
type Codec[T any] interface {
	// Marshal encodes v.
	Marshal(v T) ([]byte, error)
	// Unmarshal decodes data.
	Unmarshal(data []byte) (T, error)
}

// JSON is the default Codec: encoding/json.
type JSON[T any] struct{}

// Marshal implements Codec.
func (JSON[T]) Marshal(v T) ([]byte, error) { return json.Marshal(v) }

// Unmarshal implements Codec.
func (JSON[T]) Unmarshal(data []byte) (T, error) {
	var v T
	err := json.Unmarshal(data, &v)
	return v, err
}

// Versioned is one committed version of a Value.
type Versioned[T any] struct {
	// Value is the decoded data (the zero T if the znode does not exist or
	// could not be decoded).
	Value T
	// Exists is false when the znode does not exist.
	Exists bool
	// Version is the znode's data version, for CompareAndSet.
	Version int32
	// Zxid is the zxid of the write that made this version (Stat.Mzxid);
	// versions are delivered in increasing Zxid order.
	Zxid int64
	// Err is set when the data could not be decoded.
	Err error
}

// Value is a typed configuration value stored in one znode, encoded with a
// Codec (JSON by default), with compare-and-set updates on the znode's
// version and a watch that delivers versions in commit order.
type Value[T any] struct {
	c     *Client
	path  string
	codec Codec[T]
}

// NewValue returns the Value at path; a nil codec means JSON.
func NewValue[T any](c *Client, path string, codec Codec[T]) (*Value[T], error) {
	if err := validatePath(path); err != nil {
		return nil, err
	}
	if codec == nil {
		codec = JSON[T]{}
	}
	return &Value[T]{c: c, path: path, codec: codec}, nil
}

func (v *Value[T]) version(data []byte, stat *zk.Stat) Versioned[T] {
	out := Versioned[T]{Exists: true, Version: stat.Version, Zxid: stat.Mzxid}
	val, err := v.codec.Unmarshal(data)
	if err != nil {
		out.Err = fmt.Errorf("recipes: decode %s version %d: %w", v.path, stat.Version, err)
	} else {
		out.Value = val
	}
	return out
}

// Get reads the current version (Exists false if there is none).
func (v *Value[T]) Get(ctx context.Context) (Versioned[T], error) {
	if err := ctx.Err(); err != nil {
		return Versioned[T]{}, err
	}
	data, stat, err := v.c.conn.Get(v.path)
	if errors.Is(err, zk.ErrNoNode) {
		return Versioned[T]{}, nil
	}
	if err != nil {
		return Versioned[T]{}, fmt.Errorf("recipes: get %s: %w", v.path, err)
	}
	return v.version(data, stat), nil
}

// Create writes the first version; ErrVersionConflict if the znode exists.
func (v *Value[T]) Create(ctx context.Context, val T) (Versioned[T], error) {
	if err := ctx.Err(); err != nil {
		return Versioned[T]{}, err
	}
	data, err := v.codec.Marshal(val)
	if err != nil {
		return Versioned[T]{}, fmt.Errorf("recipes: encode %s: %w", v.path, err)
	}
	if _, err := v.c.create(v.path, data, zk.FlagPersistent); err != nil {
		if errors.Is(err, zk.ErrNodeExists) {
			return Versioned[T]{}, fmt.Errorf("recipes: create %s: %w", v.path, ErrVersionConflict)
		}
		return Versioned[T]{}, fmt.Errorf("recipes: create %s: %w", v.path, err)
	}
	return v.Get(ctx)
}

// CompareAndSet writes val if the znode's version is still version, and
// returns the new version; ErrVersionConflict otherwise (also when the znode
// is gone).
func (v *Value[T]) CompareAndSet(ctx context.Context, val T, version int32) (Versioned[T], error) {
	if err := ctx.Err(); err != nil {
		return Versioned[T]{}, err
	}
	if version < 0 {
		return Versioned[T]{}, fmt.Errorf("recipes: compare-and-set %s: version %d is not a version", v.path, version)
	}
	data, err := v.codec.Marshal(val)
	if err != nil {
		return Versioned[T]{}, fmt.Errorf("recipes: encode %s: %w", v.path, err)
	}
	stat, err := v.c.conn.Set(v.path, data, version)
	if errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNoNode) {
		return Versioned[T]{}, fmt.Errorf("recipes: compare-and-set %s at version %d: %w (%v)", v.path, version, ErrVersionConflict, err)
	}
	if err != nil {
		return Versioned[T]{}, fmt.Errorf("recipes: compare-and-set %s: %w", v.path, err)
	}
	return Versioned[T]{Value: val, Exists: true, Version: stat.Version, Zxid: stat.Mzxid}, nil
}

// Update applies fn to the current version (Exists false if none) and
// writes the result with compare-and-set, retrying on conflicts until it
// succeeds, fn fails or ctx is done. A version that does not decode is
// passed to fn with its Err set.
func (v *Value[T]) Update(ctx context.Context, fn func(cur Versioned[T]) (T, error)) (Versioned[T], error) {
	for {
		cur, err := v.Get(ctx)
		if err != nil {
			return Versioned[T]{}, err
		}
		next, err := fn(cur)
		if err != nil {
			return Versioned[T]{}, err
		}
		var out Versioned[T]
		if cur.Exists {
			out, err = v.CompareAndSet(ctx, next, cur.Version)
		} else {
			out, err = v.Create(ctx, next)
		}
		if !errors.Is(err, ErrVersionConflict) {
			return out, err
		}
	}
}

// Watch delivers the current version and then each later version it reads,
// in commit order: never one older than, or equal to, a version already
// delivered (a new session syncs before reading, so a lagging server cannot
// hand back an older version). ZooKeeper keeps only a znode's latest data,
// so versions overwritten before the watch fires are folded into the newer
// one; a writer that must have every version seen waits for it (see the
// examples). A deletion is delivered as Exists false. The channel is closed
// when ctx is done or the Client is closed; a consumer that falls behind
// holds the watch back rather than losing versions it has been sent.
func (v *Value[T]) Watch(ctx context.Context) <-chan Versioned[T] {
	out := make(chan Versioned[T])
	go func() {
		defer close(out)
		log := slog.Default().With("recipe", "value", "path", v.path)
		var lastZxid int64 = -1
		lastExists := false
		first := true
		var session int64
		send := func(x Versioned[T]) bool {
			select {
			case out <- x:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for ctx.Err() == nil {
			g, err := v.c.session(ctx)
			if err != nil {
				return
			}
			if g.session != session {
				if _, err := v.c.conn.Sync(v.path); err != nil && !errors.Is(err, zk.ErrNoNode) {
					_ = settle(ctx, g)
					continue
				}
				session = g.session
			}
			data, stat, ch, err := v.c.conn.GetW(v.path)
			if errors.Is(err, zk.ErrNoNode) {
				var ok bool
				ok, _, ch, err = v.c.conn.ExistsW(v.path)
				if err == nil && ok {
					continue // created meanwhile: read it
				}
				if err == nil && (first || lastExists) {
					if !send(Versioned[T]{}) {
						return
					}
					first, lastExists = false, false
				}
			} else if err == nil {
				if stat.Mzxid > lastZxid {
					if !send(v.version(data, stat)) {
						return
					}
					first, lastExists, lastZxid = false, true, stat.Mzxid
				}
			}
			if err != nil {
				if !retryable(err) {
					log.Warn("watch", "err", err)
				}
				_ = settle(ctx, g)
				continue
			}
			_ = wait(ctx, ch, g)
		}
	}()
	return out
}

// Delete removes the znode if its version is still version;
// ErrVersionConflict otherwise.
func (v *Value[T]) Delete(ctx context.Context, version int32) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := v.c.conn.Delete(v.path, version)
	if errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNoNode) {
		return fmt.Errorf("recipes: delete %s at version %d: %w (%v)", v.path, version, ErrVersionConflict, err)
	}
	if err != nil {
		return fmt.Errorf("recipes: delete %s: %w", v.path, err)
	}
	return nil
}
