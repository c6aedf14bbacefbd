package netstub

import (
	"cmp"
	"slices"
	"time"
)

// Two servers configured with the same id (a copied myid, a classic
// operator mistake) would both dial every peer with that id, and each peer
// would keep whichever connection came last: two histories mixed under one
// vote. Every transport instance therefore sends a random nonce in its
// handshake, which a restarted process never reuses, and an acceptor
// watches the nonces each peer id connects with.
//
// Two live processes with one id take turns: each new connection replaces
// the other's at the acceptor, the one replaced redials after its backoff,
// and so on, so a nonce that was replaced keeps coming back. A single
// comeback proves nothing, though: a process killed while its handshake was
// in flight (held up by the network, a proxy's one-way cut, or just the
// scheduling of the acceptor's goroutines) can have that handshake read
// after the one of the process that replaced it. Such a late handshake
// makes two turns (the dead nonce, then the live one redialing after being
// replaced), and a dead process has at most one (it dials each peer one
// connection at a time). Hence the proof: dupTurns turns between the same
// two nonces within dupWindow.
//
// Then the id is quarantined: every connection with it is refused (logged
// at Error once) until dupQuiet passes during which only one nonce was
// seen.
const (
	// dupWindow is how long the nonces of an id, and the turns they took,
	// are remembered. Live duplicates take turns every backoffMax (2 s) at
	// most, so dupTurns of them fit in it many times over.
	dupWindow = time.Minute
	// dupTurns is the number of turns between two nonces that proves two
	// live processes: one more than a dead process's late handshake makes.
	dupTurns = 3
	// dupQuiet ends a quarantine: the first connection after dupQuiet
	// during which no other nonce was seen is accepted. A refused dialer
	// retries every backoffMax (2 s) at most, so five silent periods of
	// retry mean the other process is gone, or cannot reach us; if it comes
	// back, the turns start again and it is caught within a few more.
	dupQuiet = 10 * time.Second
	// dupMaxNonces and dupMaxTurns bound what is kept per id.
	dupMaxNonces = 8
	dupMaxTurns  = 16
)

// dupDetector holds the recent nonces of every peer id. The zero value is
// ready; the transport's lock guards it (DupIDs).
type dupDetector struct {
	// window and quiet override dupWindow and dupQuiet when not zero
	// (tests).
	window, quiet time.Duration
	ids           map[int64]*idHistory
}

// idHistory is what one id connected with recently.
type idHistory struct {
	// cur is the nonce of the connection accepted last, 0 before any.
	cur uint64
	// seen has the nonces connected with, one entry each, in the order of
	// their latest sighting; at most dupMaxNonces, none older than window.
	seen []nonceSeen
	// turns are the comebacks of a nonce replaced since it was seen,
	// oldest first; at most dupMaxTurns, none older than window.
	turns []nonceTurn
	// quarantined is set when two live processes were proven, and pair
	// names them.
	quarantined bool
	pair        [2]nonceSeen
}

// nonceSeen is the latest sighting of one nonce.
type nonceSeen struct {
	nonce uint64    // the dialer's instance nonce
	addr  string    // the remote address of its latest connection
	at    time.Time // when that connection's handshake was read
}

// nonceTurn is a connection with nonce back replacing one with nonce from.
type nonceTurn struct {
	lo, hi uint64    // the two nonces, in increasing order
	at     time.Time // when the comeback's handshake was read
}

// dupVerdict is what the detector says about one connection.
type dupVerdict int

const (
	dupAccept   dupVerdict = iota
	dupDetected            // refuse: proof of two live processes, just now
	dupRefuse              // refuse: the id is in quarantine
	dupCleared             // accept: the quarantine is over
)

func (d *dupDetector) windowOrDefault() time.Duration { return cmp.Or(d.window, dupWindow) }
func (d *dupDetector) quietOrDefault() time.Duration  { return cmp.Or(d.quiet, dupQuiet) }

// history returns the history of id, forgetting what is older than the
// window.
func (d *dupDetector) history(id int64, now time.Time) *idHistory {
	if d.ids == nil {
		d.ids = map[int64]*idHistory{}
	}
	h := d.ids[id]
	if h == nil {
		h = &idHistory{}
		d.ids[id] = h
	}
	cutoff := now.Add(-d.windowOrDefault())
	h.seen = slices.DeleteFunc(h.seen, func(s nonceSeen) bool { return s.at.Before(cutoff) })
	h.turns = slices.DeleteFunc(h.turns, func(t nonceTurn) bool { return t.at.Before(cutoff) })
	return h
}

// prune forgets the ids keep refuses (peers no longer configured).
func (d *dupDetector) prune(keep func(int64) bool) {
	for id := range d.ids {
		if !keep(id) {
			delete(d.ids, id)
		}
	}
}

// admit records a connection of peer id with nonce from addr and says
// whether to accept it.
func (d *dupDetector) admit(id int64, nonce uint64, addr string, now time.Time) (dupVerdict, *idHistory) {
	h := d.history(id, now)
	if h.quarantined {
		h.see(nonce, addr, now)
		if len(h.seenSince(now.Add(-d.quietOrDefault()))) > 1 {
			return dupRefuse, h
		}
		h.quarantined = false
		h.seen = h.seen[len(h.seen)-1:]
		h.turns = nil
		h.cur = nonce
		return dupCleared, h
	}
	if nonce == h.cur { // the same process redialing
		h.see(nonce, addr, now)
		return dupAccept, h
	}
	if _, ok := h.lookup(nonce); ok && h.cur != 0 {
		// Seen before, and replaced since: it came back.
		lo, hi := min(nonce, h.cur), max(nonce, h.cur)
		if len(h.turns) == dupMaxTurns {
			h.turns = slices.Delete(h.turns, 0, 1)
		}
		h.turns = append(h.turns, nonceTurn{lo: lo, hi: hi, at: now})
		n := 0
		for _, t := range h.turns {
			if t.lo == lo && t.hi == hi {
				n++
			}
		}
		if n >= dupTurns {
			other, _ := h.lookup(h.cur)
			h.see(nonce, addr, now)
			h.quarantined = true
			h.pair = [2]nonceSeen{other, {nonce: nonce, addr: addr, at: now}}
			return dupDetected, h
		}
	}
	h.see(nonce, addr, now)
	h.cur = nonce
	return dupAccept, h
}

// claimOwn records a connection from another server claiming self, this
// server's own id, and reports whether it starts an episode (none was seen
// for the quiet period).
func (d *dupDetector) claimOwn(self int64, nonce uint64, addr string, now time.Time) bool {
	h := d.history(self, now)
	first := len(h.seenSince(now.Add(-d.quietOrDefault()))) == 0
	h.see(nonce, addr, now)
	return first
}

// duplicates returns the ids two live servers use now, sorted: peer ids in
// quarantine whose two servers are both still dialing, and self while
// another server claims it or a peer says so.
func (d *dupDetector) duplicates(self int64, now time.Time) []int64 {
	var ids []int64
	quiet := now.Add(-d.quietOrDefault())
	for id, h := range d.ids {
		n := len(h.seenSince(quiet))
		if (id == self && n > 0) || (id != self && h.quarantined && n > 1) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func (h *idHistory) see(nonce uint64, addr string, now time.Time) {
	h.seen = slices.DeleteFunc(h.seen, func(s nonceSeen) bool { return s.nonce == nonce })
	if len(h.seen) >= dupMaxNonces {
		h.seen = slices.Delete(h.seen, 0, len(h.seen)-dupMaxNonces+1)
	}
	h.seen = append(h.seen, nonceSeen{nonce: nonce, addr: addr, at: now})
}

func (h *idHistory) lookup(nonce uint64) (nonceSeen, bool) {
	for _, s := range h.seen {
		if s.nonce == nonce {
			return s, true
		}
	}
	return nonceSeen{}, false
}

// seenSince returns the nonces seen after cutoff.
func (h *idHistory) seenSince(cutoff time.Time) []nonceSeen {
	i := len(h.seen)
	for i > 0 && h.seen[i-1].at.After(cutoff) {
		i--
	}
	return h.seen[i:]
}
