package tree

import (
	"slices"

	"github.com/zabkeeper/zabkeeper/proto"
)

// watchMode is a bit set of the kinds of registration a watcher holds on one
// path in one table.
type watchMode uint8

const (
	watchStandard   watchMode = 1 << iota // one-shot data/exist or child watch
	watchPersistent                       // addWatch mode 0: both tables
	watchRecursive                        // addWatch mode 1: data table only
)

// watchTable maps a path to its watchers and their modes.
type watchTable map[string]map[WatcherID]watchMode

// watchRegistry holds the data and child watch tables as ZooKeeper's
// DataTree does: data/exist watches and persistent and recursive watches in
// data; child and persistent watches in child.
type watchRegistry struct {
	data, child watchTable
	// recursive counts recursive registrations; while it is zero, firing
	// skips the walk over ancestors.
	recursive int
	// byWatcher maps a watcher to every path it watches in either table.
	byWatcher map[WatcherID]map[string]struct{}
	// auth is each watcher's latest authentication, for filtering events
	// by READ permission at delivery.
	auth map[WatcherID][]proto.Id
}

func newWatchRegistry() watchRegistry {
	return watchRegistry{
		data:      watchTable{},
		child:     watchTable{},
		byWatcher: map[WatcherID]map[string]struct{}{},
		auth:      map[WatcherID][]proto.Id{},
	}
}

// add registers mode for w on path in tab.
func (r *watchRegistry) add(tab watchTable, path string, w WatcherID, mode watchMode) {
	ws := tab[path]
	if ws == nil {
		ws = map[WatcherID]watchMode{}
		tab[path] = ws
	}
	old := ws[w]
	if old&watchRecursive == 0 && mode&watchRecursive != 0 {
		r.recursive++
	}
	ws[w] = old | mode
	paths := r.byWatcher[w]
	if paths == nil {
		paths = map[string]struct{}{}
		r.byWatcher[w] = paths
	}
	paths[path] = struct{}{}
}

// remove clears the mode bits (all of them when mode is 0) of w on path in
// tab and reports whether any were set.
func (r *watchRegistry) remove(tab watchTable, path string, w WatcherID, mode watchMode) bool {
	ws := tab[path]
	old, ok := ws[w]
	if !ok {
		return false
	}
	if mode == 0 {
		mode = old
	}
	if old&mode == 0 {
		return false
	}
	r.setMode(tab, ws, path, w, old&^mode)
	return true
}

// setMode stores w's new mode on path (deleting the entry at 0), keeping the
// recursive count and byWatcher in step.
func (r *watchRegistry) setMode(tab watchTable, ws map[WatcherID]watchMode, path string, w WatcherID, m watchMode) {
	if ws[w]&watchRecursive != 0 && m&watchRecursive == 0 {
		r.recursive--
	}
	if m != 0 {
		ws[w] = m
		return
	}
	delete(ws, w)
	if len(ws) == 0 {
		delete(tab, path)
	}
	r.release(path, w)
}

// release drops path from w's paths once w holds nothing on it in either
// table, and w's authentication with its last path.
func (r *watchRegistry) release(path string, w WatcherID) {
	if _, ok := r.data[path][w]; ok {
		return
	}
	if _, ok := r.child[path][w]; ok {
		return
	}
	if paths := r.byWatcher[w]; paths != nil {
		delete(paths, path)
		if len(paths) == 0 {
			delete(r.byWatcher, w)
			delete(r.auth, w)
		}
	}
}

// dropOneShot removes path's table ws from tab, whose watchers all held only
// a one-shot registration there, keeping byWatcher and auth as setMode would
// for each.
func (r *watchRegistry) dropOneShot(tab watchTable, path string, ws map[WatcherID]watchMode) {
	delete(tab, path)
	for w := range ws {
		r.release(path, w)
	}
}

// has reports whether w holds any of mode's bits (any bit when mode is 0) on
// path in tab.
func (r *watchRegistry) has(tab watchTable, path string, w WatcherID, mode watchMode) bool {
	m, ok := tab[path][w]
	if !ok {
		return false
	}
	return mode == 0 || m&mode != 0
}

// setAuth remembers the watcher's latest authentication.
func (r *watchRegistry) setAuth(w WatcherID, ids []proto.Id) {
	r.auth[w] = slices.Clone(ids)
}

// RemoveWatcher drops every watch of w (its connection closed).
func (t *Tree) RemoveWatcher(w WatcherID) {
	r := &t.watches
	for _, p := range sortedKeys(r.byWatcher[w]) {
		r.remove(r.data, p, w, 0)
		r.remove(r.child, p, w, 0)
	}
	delete(r.byWatcher, w)
	delete(r.auth, w)
}

// WatchCount returns the number of watch registrations: one per watcher and
// path in each of the data and child tables (a persistent watch counts
// twice, as in ZooKeeper).
func (t *Tree) WatchCount() int {
	n := 0
	for _, ws := range t.watches.data {
		n += len(ws)
	}
	for _, ws := range t.watches.child {
		n += len(ws)
	}
	return n
}

// WatchesByWatcher returns, for each watcher, the sorted paths it watches.
func (t *Tree) WatchesByWatcher() map[WatcherID][]string {
	out := make(map[WatcherID][]string, len(t.watches.byWatcher))
	for w, paths := range t.watches.byWatcher {
		out[w] = sortedKeys(paths)
	}
	return out
}

// fire triggers the watches of the data (or child) table for an event of type typ on path and
// appends the events to out. In the data table, recursive watches on every
// ancestor fire too. One-shot registrations are consumed (even if the event
// is then filtered out by ACL); persistent ones stay. Watchers in suppress
// are skipped. It returns the appended events and the watchers triggered
// (before ACL filtering), sorted.
func (t *Tree) fire(data bool, path string, typ int32, zxid int64, acl []proto.ACL, suppress []WatcherID, out []Event) ([]Event, []WatcherID) {
	r := &t.watches
	tab := r.child
	if data {
		tab = r.data
	}
	var hit []WatcherID
	ws := tab[path]
	oneShot := true
	if len(ws) > 0 {
		hit = make([]WatcherID, 0, len(ws))
		for w, m := range ws {
			hit = append(hit, w)
			oneShot = oneShot && m == watchStandard
		}
	}
	if data && r.recursive > 0 {
		for p := path; p != rootPath; {
			p, _ = splitPath(p)
			for w, m := range tab[p] {
				if m&watchRecursive != 0 {
					hit = append(hit, w)
				}
			}
		}
	}
	if len(hit) == 0 {
		return out, nil
	}
	slices.Sort(hit)
	hit = slices.Compact(hit)
	out = slices.Grow(out, len(hit))
	for _, w := range hit {
		if slices.Contains(suppress, w) || t.checkACL(r.auth[w], acl, proto.PermRead) != proto.ErrOK {
			continue
		}
		out = append(out, Event{
			Watcher: w,
			Event:   proto.WatcherEvent{Type: typ, State: proto.StateSyncConnected, Path: path},
			Zxid:    zxid,
		})
	}
	// One-shot registrations are consumed only now: consuming a watcher's
	// last watch forgets its authentication, which the ACL check above
	// needs.
	switch {
	case len(ws) == 0:
	case oneShot:
		// The usual fan-out (1,000 getData watches): drop the path's
		// table at once rather than entry by entry.
		r.dropOneShot(tab, path, ws)
	default:
		for w, m := range ws {
			if m&watchStandard != 0 {
				r.setMode(tab, ws, path, w, m&^watchStandard)
			}
		}
	}
	return out, hit
}
