package zab

import "sort"

// memLog is the in-memory tail of the replicated history: the entries after
// base, which is the zxid of the newest entry no longer held (the snapshot or
// the last compacted entry; 0 for an empty history). Zxids strictly
// increase along it.
type memLog struct {
	base int64
	ents []Entry
	// bytes is the sum of the held entries' payload lengths.
	bytes int64
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
	k := l.search(z + 1)
	for i := k; i < len(l.ents); i++ {
		l.bytes -= int64(len(l.ents[i].Data))
		l.ents[i] = Entry{} // release the payload
	}
	l.ents = l.ents[:k]
}

func (l *memLog) append(e Entry) {
	l.ents = append(l.ents, e)
	l.bytes += int64(len(e.Data))
}

// reset empties the log at a snapshot point.
func (l *memLog) reset(base int64) {
	l.base = base
	l.ents = nil
	l.bytes = 0
}

// bytesAfter returns the payload bytes of the held entries with a zxid > z.
func (l *memLog) bytesAfter(z int64) int64 {
	var n int64
	for _, e := range l.after(z) {
		n += int64(len(e.Data))
	}
	return n
}

// compact drops the oldest entries with a zxid <= upTo while more than
// maxEntries are held or their payloads exceed maxBytes. Dropped slots are
// zeroed so their payloads can be collected at once; the slice's backing
// array is replaced by the next append that outgrows it, which copies only
// the held entries (amortized O(1) per entry).
func (l *memLog) compact(upTo int64, maxEntries int, maxBytes int64) {
	limit := l.search(upTo + 1) // entries [0, limit) are droppable
	n := 0
	bytes := l.bytes
	for n < limit && (len(l.ents)-n > maxEntries || bytes > maxBytes) {
		bytes -= int64(len(l.ents[n].Data))
		n++
	}
	if n == 0 {
		return
	}
	l.base = l.ents[n-1].Zxid
	clear(l.ents[:n])
	l.ents = l.ents[n:]
	l.bytes = bytes
	if len(l.ents) == 0 {
		l.ents = nil
	}
}
