package zab

import "sort"

// memLog is the in-memory tail of the replicated history: the entries after
// base, which is the zxid of the newest entry no longer held (the snapshot or
// the last compacted entry; 0 for an empty history). Zxids strictly
// increase along it.
type memLog struct {
	base int64
	ents []Entry
}

// last returns the newest zxid in the history.
func (l *memLog) last() int64 {
	if n := len(l.ents); n > 0 {
		return l.ents[n-1].Zxid
	}
	return l.base
}

// search returns the index of the first entry with a zxid >= z.
func (l *memLog) search(z int64) int {
	return sort.Search(len(l.ents), func(i int) bool { return l.ents[i].Zxid >= z })
}

// contains reports whether z is a point of the held history: base or the
// zxid of a held entry.
func (l *memLog) contains(z int64) bool {
	if z == l.base {
		return true
	}
	i := l.search(z)
	return i < len(l.ents) && l.ents[i].Zxid == z
}

// after returns the held entries with a zxid > z; z must be >= base.
func (l *memLog) after(z int64) []Entry {
	return l.ents[l.search(z+1):]
}

// lastBefore returns the newest history point < z, if it is held (that is,
// base < z).
func (l *memLog) lastBefore(z int64) (int64, bool) {
	if z <= l.base {
		return 0, false
	}
	i := l.search(z)
	if i == 0 {
		return l.base, true
	}
	return l.ents[i-1].Zxid, true
}

// truncate discards entries with a zxid > z.
func (l *memLog) truncate(z int64) {
	l.ents = l.ents[:l.search(z+1)]
}

func (l *memLog) append(e Entry) { l.ents = append(l.ents, e) }

// reset empties the log at a snapshot point.
func (l *memLog) reset(base int64) {
	l.base = base
	l.ents = nil
}

// compact drops the oldest entries with a zxid <= upTo once more than
// 2·max are held, down to max. Compacting only past twice the bound keeps
// the copy amortized O(1) per entry instead of O(max) on every Advance.
func (l *memLog) compact(upTo int64, max int) {
	if max <= 0 || len(l.ents) <= 2*max {
		return
	}
	n := len(l.ents) - max
	if k := l.search(upTo + 1); k < n {
		n = k
	}
	if n <= 0 {
		return
	}
	l.base = l.ents[n-1].Zxid
	l.ents = append([]Entry(nil), l.ents[n:]...)
}
