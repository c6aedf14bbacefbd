package recipes

import (
	"strings"
)

// RWMutex is a distributed read-write lock compatible with Curator's
// InterProcessReadWriteLock: readers and writers queue as ephemeral
// sequential znodes <path>/_c_<uuid>-__READ__<seq> and
// <path>/_c_<uuid>-__WRIT__<seq> in one line ordered by sequence. A writer
// holds the lock when it is first; a reader holds it when no writer is ahead
// of it. A writer may take the read lock while it holds the write lock
// (downgrade: take the read lock, then release the write lock); a reader
// cannot upgrade. Both halves are reentrant per RWMutex value.
type RWMutex struct {
	write *Mutex
	read  *Mutex
}

// NewRWMutex returns a read-write lock on path; data is stored in the
// participant znodes.
func NewRWMutex(c *Client, path string, data []byte) (*RWMutex, error) {
	w, err := NewMutex(c, path, data)
	if err != nil {
		return nil, err
	}
	w.core.name = writeName
	w.core.sortNames = []string{readName, writeName}
	r, err := NewMutex(c, path, data)
	if err != nil {
		return nil, err
	}
	r.core.name = readName
	r.core.sortNames = []string{readName, writeName}
	r.core.decide = func(sorted []string, ours string) (bool, string, error) {
		if w.Held() {
			return true, "", nil
		}
		firstWrite, ourIdx := -1, -1
		for i, n := range sorted {
			if strings.Contains(n, writeName) {
				if firstWrite < 0 {
					firstWrite = i
				}
			} else if n == ours {
				ourIdx = i
				break
			}
		}
		if ourIdx < 0 {
			return false, "", errNodeGone
		}
		if firstWrite < 0 || ourIdx < firstWrite {
			return true, "", nil
		}
		return false, sorted[firstWrite], nil
	}
	// Inside the write lock a read znode takes the writer's sequence, so it
	// sorts with the write znode and no later writer gets ahead of it.
	r.core.fixedSeq = func() string {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.held == nil || w.held.ctx.Err() != nil {
			return ""
		}
		return sortKey(w.held.path[strings.LastIndexByte(w.held.path, '/')+1:], readName, writeName)
	}
	return &RWMutex{write: w, read: r}, nil
}

// WriteLock returns the write half: a Mutex that excludes every reader and
// writer.
func (rw *RWMutex) WriteLock() *Mutex { return rw.write }

// ReadLock returns the read half: a Mutex shared with other readers and
// excluded by writers.
func (rw *RWMutex) ReadLock() *Mutex { return rw.read }
