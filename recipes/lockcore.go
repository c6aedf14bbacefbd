package recipes

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/go-zookeeper/zk"
)

// Curator's lock node names. A participant's znode is
// <dir>/_c_<uuid>-<name><10-digit sequence>; participants are ordered by the
// part after the name (the sequence), whatever their protected prefix.
const (
	mutexName = "lock-"    // InterProcessMutex, and the semaphore's locks/ child
	readName  = "__READ__" // InterProcessReadWriteLock's readers
	writeName = "__WRIT__" // InterProcessReadWriteLock's writers
	latchName = "latch-"   // LeaderLatch
	leaseName = "lease-"   // InterProcessSemaphoreV2's leases/ children
)

// sortKey is the part of a participant's name after the last occurrence of
// one of names (Curator's fixForSorting), or the whole name.
func sortKey(node string, names ...string) string {
	for _, n := range names {
		if i := strings.LastIndex(node, n); i >= 0 {
			node = node[i+len(n):]
		}
	}
	return node
}

// sortParticipants orders children by their sort keys, stably (as Java's
// Collections.sort does).
func sortParticipants(children []string, names ...string) []string {
	out := append([]string(nil), children...)
	sort.SliceStable(out, func(i, j int) bool { return sortKey(out[i], names...) < sortKey(out[j], names...) })
	return out
}

// decideFunc says, from the sorted children and our node's name, whether we
// hold the lock and otherwise which child to watch.
type decideFunc func(sorted []string, ours string) (holds bool, watch string, err error)

// firstN is the standard decision: the first n participants hold the lock,
// every other one watches the participant n places before it (so a release
// wakes exactly one waiter: no herd).
func firstN(n int) decideFunc {
	return func(sorted []string, ours string) (bool, string, error) {
		i := indexOf(sorted, ours)
		if i < 0 {
			return false, "", errNodeGone
		}
		if i < n {
			return true, "", nil
		}
		return false, sorted[i-n], nil
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// errNodeGone means our participant znode vanished (its session expired, or
// someone deleted it); the attempt starts over.
var errNodeGone = errors.New("recipes: participant znode is gone")

// lockCore is Curator's LockInternals: one attempt to hold a lock on dir as a
// participant named name, ordered among the participants named sortNames.
type lockCore struct {
	c         *Client
	dir       string
	name      string
	sortNames []string
	data      []byte
	decide    decideFunc
	// fixedSeq, when set, returns a sequence to create a non-sequential node
	// with (a reader inside its own write lock sorts with that lock).
	fixedSeq func() string
}

// acquire creates a participant znode and waits until it holds the lock. It
// returns the znode, the generation it was confirmed in (so the caller can
// hand out an ownership context tied to it) or an error; on error (including
// ctx's) it leaves no znode behind.
func (l *lockCore) acquire(ctx context.Context) (string, *generation, error) {
	for {
		g, err := l.c.session(ctx)
		if err != nil {
			return "", nil, err
		}
		path, err := l.create(ctx, g)
		if errors.Is(err, errLost) {
			continue
		}
		if err != nil {
			return "", nil, err
		}
		g, err = l.wait(ctx, g, path)
		switch {
		case err == nil:
			return path, g, nil
		case errors.Is(err, errNodeGone), errors.Is(err, errLost):
			l.c.deleteEventually(path, g.session)
			continue
		default:
			l.c.deleteEventually(path, g.session)
			return "", nil, err
		}
	}
}

func (l *lockCore) create(ctx context.Context, g *generation) (string, error) {
	if l.fixedSeq != nil {
		if seq := l.fixedSeq(); seq != "" {
			return l.c.createProtected(ctx, g, l.dir, l.name+seq, l.data, zk.FlagEphemeral)
		}
	}
	return l.c.createProtected(ctx, g, l.dir, l.name, l.data, zk.FlagEphemeralSequential)
}

// wait loops until path holds the lock in an unbroken connection of the
// session that created it. A reconnect within the same session goes on
// waiting; a new session returns errLost.
func (l *lockCore) wait(ctx context.Context, g *generation, path string) (*generation, error) {
	ours := path[strings.LastIndexByte(path, '/')+1:]
	session := g.session
	for {
		if g.isLost() {
			ng, err := l.c.session(ctx)
			if err != nil {
				return g, err
			}
			if ng.session != session {
				return g, errLost
			}
			g = ng
		}
		children, _, err := l.c.conn.Children(l.dir)
		if err != nil {
			if retryable(err) {
				if err := settle(ctx, g); err != nil {
					return g, err
				}
				continue
			}
			return g, fmt.Errorf("recipes: list %s: %w", l.dir, err)
		}
		holds, watch, err := l.decide(sortParticipants(children, l.sortNames...), ours)
		if err != nil {
			return g, err
		}
		if holds {
			if g.isLost() {
				continue
			}
			return g, nil
		}
		// Watch only the predecessor; getData rather than exists leaves no
		// watch behind if it is already gone.
		_, _, ch, err := l.c.conn.GetW(join(l.dir, watch))
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			if retryable(err) {
				if err := settle(ctx, g); err != nil {
					return g, err
				}
				continue
			}
			return g, fmt.Errorf("recipes: watch %s: %w", watch, err)
		}
		if err := wait(ctx, ch, g); err != nil && !errors.Is(err, errLost) {
			return g, err
		}
	}
}

// participants returns the participant znodes of dir in lock order.
func participants(c *Client, dir string, names ...string) ([]string, error) {
	children, _, err := c.conn.Children(dir)
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("recipes: list %s: %w", dir, err)
	}
	var out []string
	for _, ch := range children {
		for _, n := range names {
			if strings.Contains(ch, n) {
				out = append(out, ch)
				break
			}
		}
	}
	return sortParticipants(out, names...), nil
}
