package load

import (
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/zabkeeper/zabkeeper/linearizability"
)

// Recorder collects operations from concurrent sessions: the history, the
// return times of acknowledged successful writes (for write pauses) and
// the sessions seen to expire. Its methods are safe for concurrent use.
type Recorder struct {
	mu      sync.Mutex
	h       linearizability.History
	acks    []int64         // Return times of acknowledged successful writes, in the order recorded
	expired map[int64]int64 // session -> when its expiry was noticed (Unix ns)
	// confirmed: session -> when its closeSession was known committed
	// (ConfirmExpired).
	confirmed map[int64]int64
	unknowns  int
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{expired: map[int64]int64{}, confirmed: map[int64]int64{}}
}

// Add records one operation.
func (r *Recorder) Add(op linearizability.Op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.h.Add(op)
	switch {
	case !op.Completed():
		r.unknowns++
	case op.Kind.IsWrite() && op.Err == linearizability.ErrOK:
		r.acks = append(r.acks, op.Return)
	}
}

// NoteExpired records that session expired, at the first call (later calls
// for the same session, and session 0, are ignored).
func (r *Recorder) NoteExpired(session int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.expired[session]; !ok && session != 0 {
		r.expired[session] = time.Now().UnixNano()
	}
}

// ConfirmExpired records that the closeSession of an expired session was
// committed by at (Unix ns): a client saw an effect of it, such as the
// NodeDeleted of one of the session's ephemerals. The first confirmation
// of a session counts.
func (r *Recorder) ConfirmExpired(session, at int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.confirmed[session]; !ok {
		r.confirmed[session] = at
	}
}

// Expired reports whether session was noted as expired.
func (r *Recorder) Expired(session int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.expired[session]
	return ok
}

// Counts returns how many operations had an unknown outcome and how many
// sessions were seen to expire.
func (r *Recorder) Counts() (unknowns, expired int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unknowns, len(r.expired)
}

// ExpiredSessions returns the sessions seen to expire, in increasing
// order.
func (r *Recorder) ExpiredSessions() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.expired))
}

// ExpiredBetween counts the sessions seen to expire in [from, to].
func (r *Recorder) ExpiredBetween(from, to time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, at := range r.expired {
		if at >= from.UnixNano() && at <= to.UnixNano() {
			n++
		}
	}
	return n
}

// History returns the recorded history with a closeSession appended for
// every session seen to expire (linearizability.History.AddExpiry: it may
// have happened any time after the session's last reply, and it returns
// when ConfirmExpired said, else never).
func (r *Recorder) History() linearizability.History {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := linearizability.History{Ops: slices.Clone(r.h.Ops)}
	// In session order, so that two calls give the same history.
	sessions := make([]int64, 0, len(r.expired))
	for s := range r.expired {
		sessions = append(sessions, s)
	}
	slices.Sort(sessions)
	for _, s := range sessions {
		confirmed, ok := r.confirmed[s]
		if !ok {
			confirmed = linearizability.Unknown
		}
		h.AddExpiry(s, r.expired[s], confirmed)
	}
	return h
}

// Acks returns the return times of the acknowledged successful writes
// recorded so far, in the order recorded.
func (r *Recorder) Acks() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.acks)
}

// WritePause returns the longest time without an acknowledged write that
// overlaps [from, to]: the gap from the last acknowledgement before from
// (or from itself) to the next one. It is to when no write was
// acknowledged after from by then.
func (r *Recorder) WritePause(from, to time.Time) time.Duration {
	acks := r.Acks()
	slices.Sort(acks)
	f, t := from.UnixNano(), to.UnixNano()
	i := sort.Search(len(acks), func(i int) bool { return acks[i] >= f })
	prev := f
	if i > 0 {
		prev = acks[i-1]
	}
	var longest int64
	for ; i < len(acks) && prev <= t; i++ {
		longest = max(longest, acks[i]-prev)
		prev = acks[i]
	}
	if prev <= t {
		longest = max(longest, t-prev)
	}
	return time.Duration(longest)
}
