package netstub

import (
	"sync"

	"github.com/zabkeeper/zabkeeper/engine/zab"
)

// MemHub connects MemTransports through a Network with zero latency, for
// tests that run servers on goroutines. Cuts and partitions act on the
// underlying Network. It is safe for concurrent use.
type MemHub struct {
	mu   sync.Mutex
	net  *Network
	ends map[int64]*MemTransport
}

// NewMemHub returns a hub with no endpoints.
func NewMemHub() *MemHub {
	return &MemHub{net: NewNetwork(nil), ends: map[int64]*MemTransport{}}
}

// Transport returns the endpoint of server id, creating it on first use.
func (h *MemHub) Transport(id int64) *MemTransport {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t := h.ends[id]; t != nil {
		return t
	}
	t := &MemTransport{hub: h, id: id, out: make(chan zab.Message), stop: make(chan struct{})}
	t.cond = sync.NewCond(&t.mu)
	h.ends[id] = t
	go t.pump()
	return t
}

// Cut cuts the link from → to; see Network.Cut.
func (h *MemHub) Cut(from, to int64) { h.do(func() { h.net.Cut(from, to, 0) }) }

// Heal restores the link from → to.
func (h *MemHub) Heal(from, to int64) { h.do(func() { h.net.Heal(from, to) }) }

// Partition cuts every link between groups; see Network.Partition.
func (h *MemHub) Partition(groups ...[]int64) { h.do(func() { h.net.Partition(0, groups...) }) }

// HealAll restores every link.
func (h *MemHub) HealAll() { h.do(h.net.HealAll) }

// Dropped returns the number of messages lost so far.
func (h *MemHub) Dropped() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.net.Dropped
}

// do runs f under the lock and then delivers what became due.
func (h *MemHub) do(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f()
	h.net.DeliverUntil(0, func(_ int64, m zab.Message) {
		if t := h.ends[m.To]; t != nil {
			t.enqueue(m)
		}
	})
}

// MemTransport is one server's endpoint on a MemHub. Incoming messages are
// buffered without bound, so Send never blocks and never reorders.
type MemTransport struct {
	hub *MemHub
	id  int64

	mu      sync.Mutex
	cond    *sync.Cond
	pending []zab.Message
	closed  bool

	out  chan zab.Message
	stop chan struct{}
	once sync.Once
}

var _ Transport = (*MemTransport)(nil)

// Send queues m for m.To (m.From is set to this endpoint).
func (t *MemTransport) Send(m zab.Message) {
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return
	}
	m.From = t.id
	t.hub.do(func() { t.hub.net.Send(m, 0) })
}

// Recv returns the channel of incoming messages; it is closed by Close.
func (t *MemTransport) Recv() <-chan zab.Message { return t.out }

// Close stops delivery to this endpoint.
func (t *MemTransport) Close() error {
	t.once.Do(func() {
		t.mu.Lock()
		t.closed = true
		t.cond.Broadcast()
		t.mu.Unlock()
		close(t.stop)
	})
	return nil
}

func (t *MemTransport) enqueue(m zab.Message) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.pending = append(t.pending, m)
	t.cond.Signal()
}

// pump moves buffered messages to the Recv channel in order.
func (t *MemTransport) pump() {
	defer close(t.out)
	for {
		t.mu.Lock()
		for len(t.pending) == 0 && !t.closed {
			t.cond.Wait()
		}
		if t.closed {
			t.mu.Unlock()
			return
		}
		m := t.pending[0]
		t.pending[0] = zab.Message{}
		t.pending = t.pending[1:]
		t.mu.Unlock()
		select {
		case t.out <- m:
		case <-t.stop:
			return
		}
	}
}
