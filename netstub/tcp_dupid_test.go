package netstub

import (
	"net"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
)

// ---- the detector alone, on a clock of its own ----

func TestDupDetectorRestartsAreNotDuplicates(t *testing.T) {
	var d dupDetector
	now := time.Unix(1000, 0)
	for nonce := uint64(1); nonce <= 100; nonce++ { // a process restarting over and over
		for range 3 { // and reconnecting a few times in each life
			v, _ := d.admit(2, nonce, "x", now)
			require.Equal(t, dupAccept, v, "nonce %d", nonce)
			now = now.Add(100 * time.Millisecond)
		}
	}
	require.Empty(t, d.duplicates(1, now))
	require.Len(t, d.ids[2].seen, dupMaxNonces, "memory is bounded")
	require.Empty(t, d.ids[2].turns)
}

func TestDupDetectorLateHandshakeOfADeadProcessIsNotADuplicate(t *testing.T) {
	var d dupDetector
	now := time.Unix(1000, 0)
	// a is killed with a handshake in flight, read after the one of b,
	// its restart: a, b, a (late), b (redialing after a's replaced it).
	for _, nonce := range []uint64{0xa, 0xb, 0xa, 0xb, 0xb, 0xb, 0xc, 0xc} {
		v, _ := d.admit(2, nonce, "x", now)
		require.Equal(t, dupAccept, v, "nonce %x", nonce)
		now = now.Add(time.Second)
	}
	require.Empty(t, d.duplicates(1, now))
}

func TestDupDetectorTwoLiveProcesses(t *testing.T) {
	var d dupDetector
	now := time.Unix(1000, 0)
	addr := map[uint64]string{0xa: "10.0.0.5:4711", 0xb: "10.0.0.6:5122"}
	admit := func(nonce uint64) dupVerdict {
		v, _ := d.admit(2, nonce, addr[nonce], now)
		now = now.Add(time.Second)
		return v
	}
	for _, nonce := range []uint64{0xa, 0xb, 0xa, 0xb} {
		require.Equal(t, dupAccept, admit(nonce))
	}
	require.Equal(t, dupDetected, admit(0xa), "the third turn between a and b")
	h := d.ids[2]
	require.Equal(t, [2]string{addr[0xb], addr[0xa]}, [2]string{h.pair[0].addr, h.pair[1].addr})
	require.Equal(t, [2]uint64{0xb, 0xa}, [2]uint64{h.pair[0].nonce, h.pair[1].nonce})
	require.Equal(t, []int64{2}, d.duplicates(1, now))

	// Quarantine while both keep coming, restarts included.
	for _, nonce := range []uint64{0xb, 0xa, 0xa, 0xb, 0xc, 0xa} {
		require.Equal(t, dupRefuse, admit(nonce))
	}
	require.Equal(t, []int64{2}, d.duplicates(1, now))
	// a stops. c goes on being refused until it is alone for dupQuiet.
	lastA := now.Add(-time.Second)
	for now.Before(lastA.Add(dupQuiet)) {
		require.Equal(t, dupRefuse, admit(0xc))
	}
	require.Equal(t, dupCleared, admit(0xc))
	require.Empty(t, d.duplicates(1, now))
	require.Equal(t, dupAccept, admit(0xc))

	// a comes back: caught again after three turns.
	for _, nonce := range []uint64{0xa, 0xc, 0xa} {
		require.Equal(t, dupAccept, admit(nonce))
	}
	require.Equal(t, dupDetected, admit(0xc))
}

func TestDupDetectorQuarantineEndsWhenBothStop(t *testing.T) {
	var d dupDetector
	now := time.Unix(1000, 0)
	var v dupVerdict
	for _, nonce := range []uint64{0xb, 0xa, 0xb, 0xa, 0xb} {
		now = now.Add(time.Second)
		v, _ = d.admit(2, nonce, "x", now)
	}
	require.Equal(t, dupDetected, v)
	lastA := now.Add(-time.Second)
	require.Equal(t, []int64{2}, d.duplicates(1, now))
	require.Equal(t, []int64{2}, d.duplicates(1, lastA.Add(dupQuiet-time.Millisecond)))
	require.Empty(t, d.duplicates(1, lastA.Add(dupQuiet)), "one of them stopped dialing")
	require.Empty(t, d.duplicates(1, now.Add(dupQuiet)), "nobody is dialing any more")
}

func TestDupDetectorTurnsOutsideTheWindowAreForgotten(t *testing.T) {
	var d dupDetector
	now := time.Unix(1000, 0)
	// a and b take turns, but slower than the window: not proof.
	for _, nonce := range []uint64{0xa, 0xb, 0xa, 0xb, 0xa, 0xb, 0xa} {
		v, _ := d.admit(2, nonce, "x", now)
		require.Equal(t, dupAccept, v)
		now = now.Add(dupWindow/2 + time.Second)
	}
}

func TestDupDetectorThreeLiveProcesses(t *testing.T) {
	var d dupDetector
	now := time.Unix(1000, 0)
	for i := range 20 {
		v, _ := d.admit(2, uint64(1+i%3), "x", now)
		now = now.Add(time.Second)
		if v == dupDetected {
			return
		}
		require.Equal(t, dupAccept, v)
	}
	t.Fatal("three processes taking turns were not caught")
}

func TestDupDetectorToldByAPeer(t *testing.T) {
	var d dupDetector
	now := time.Unix(1000, 0)
	require.Empty(t, d.duplicates(1, now))
	d.told = now
	require.Equal(t, []int64{1}, d.duplicates(1, now.Add(dupQuiet-time.Millisecond)))
	d.claimOwn(1, 0xa, "x", now)
	require.Equal(t, []int64{1}, d.duplicates(1, now), "listed once")
	require.Empty(t, d.duplicates(1, now.Add(dupQuiet)))
}

func TestDupDetectorOwnID(t *testing.T) {
	var d dupDetector
	now := time.Unix(1000, 0)
	require.True(t, d.claimOwn(1, 0xa, "x", now), "first sighting starts an episode")
	require.False(t, d.claimOwn(1, 0xa, "x", now.Add(time.Second)))
	require.Equal(t, []int64{1}, d.duplicates(1, now.Add(time.Second)))
	later := now.Add(time.Second + dupQuiet)
	require.Empty(t, d.duplicates(1, later))
	require.True(t, d.claimOwn(1, 0xa, "x", later), "a new episode after a quiet period")
}

// ---- real transports ----

func TestTCPTwoServersWithOneIDAreDetected(t *testing.T) {
	noLeaks(t)
	sa, sb, sc := &logSink{}, &logSink{}, &logSink{}
	a := startTCP(t, 1, sa, nil)
	b := startTCP(t, 2, sb, map[int64]string{1: a.Addr().String()})
	c := startTCP(t, 2, sc, map[int64]string{1: a.Addr().String()}) // a copy of b's myid
	a.SetPeers(map[int64]string{2: b.Addr().String()})

	require.Eventually(t, func() bool { return slices.Equal(a.DuplicateIDs(), []int64{2}) },
		waitFor, 5*time.Millisecond, "a never caught the two servers with id 2")
	const why = "two servers are running with id 2"
	for _, s := range []*logSink{sb, sc} {
		require.Eventually(t, func() bool {
			return s.lines("level=ERROR", "peer refused our connection", "code=duplicate-id", why) == 1
		},
			waitFor, 5*time.Millisecond, "both misconfigured servers learn why they are refused")
	}
	// Both keep being refused, and a logs the episode at Error once.
	require.Eventually(t, func() bool { return sa.lines("refused connection", "code=duplicate-id") >= 4 }, waitFor, 5*time.Millisecond)
	require.Equal(t, 1, sa.lines("level=ERROR", why))
	require.Equal(t, 1, sa.lines("level=ERROR", why, fmtNonce(b.nonce), fmtNonce(c.nonce)), "the log names both nonces")
	require.Equal(t, []int64{2}, a.DuplicateIDs())
	require.Equal(t, []int64{2}, b.DuplicateIDs(), "the refusals told b its id is used twice")
	require.Equal(t, []int64{2}, c.DuplicateIDs())
	a.mu.Lock()
	require.Nil(t, a.inbound[2], "no connection with id 2 is admitted")
	a.mu.Unlock()

	// The operator stops c: once only b dialed for the quiet period, b is
	// let in again and its messages flow.
	require.NoError(t, c.Close())
	a.mu.Lock()
	a.dup.quiet = 300 * time.Millisecond
	a.mu.Unlock()
	await(t, a, func() { b.Send(zab.Message{Type: zab.MsgPing, To: 1}) }, isType(zab.MsgPing, 2))
	require.Empty(t, a.DuplicateIDs())
	b.mu.Lock()
	b.dup.quiet = 300 * time.Millisecond
	b.mu.Unlock()
	require.Eventually(t, func() bool { return len(b.DuplicateIDs()) == 0 }, waitFor, 5*time.Millisecond,
		"no peer refuses b any more")
	require.True(t, sa.has("accepting its connections again"))
	require.Equal(t, 1, sa.lines("level=ERROR"), "only the detection was an error")
}

func TestTCPRestartWithSameIDIsNotADuplicate(t *testing.T) {
	noLeaks(t)
	sa := &logSink{}
	a := startTCP(t, 1, sa, nil)
	for i := range int64(5) {
		// No waiting for a to notice the old instance is gone.
		b := startTCP(t, 2, &logSink{}, map[int64]string{1: a.Addr().String()})
		a.SetPeers(map[int64]string{2: b.Addr().String()})
		await(t, a, func() { b.Send(zab.Message{Type: zab.MsgPing, To: 1, Zxid: i}) }, func(m zab.Message) bool {
			return m.Type == zab.MsgPing && m.From == 2 && m.Zxid == i
		})
		await(t, b, func() { a.Send(zab.Message{Type: zab.MsgPing, To: 2}) }, isType(zab.MsgPing, 1))
		require.NoError(t, b.Close())
	}
	require.Empty(t, a.DuplicateIDs())
	require.False(t, sa.has("two servers"))
	require.False(t, sa.has("duplicate-id"))
}

// TestTCPDuplicateProofNeedsThreeTurns plays the dialers by hand to pin
// the rule: a late handshake of a dead process is tolerated, a third turn
// between the same two nonces is not.
func TestTCPDuplicateProofNeedsThreeTurns(t *testing.T) {
	noLeaks(t)
	sink := &logSink{}
	// Nobody listens at 2's address: 1 keeps redialing it, which must not
	// matter.
	a := startTCP(t, 1, sink, map[int64]string{2: "127.0.0.1:1"})
	addr := a.Addr().String()
	dialAs := func(nonce uint64, zxid int64) net.Conn {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		_, err = c.Write(append(appendHandshake(nil, 2, 1, nonce), appendFrame(nil, zab.Message{Type: zab.MsgPing, Zxid: zxid})...))
		require.NoError(t, err)
		return c
	}
	admitted := func(nonce uint64, zxid int64) net.Conn {
		c := dialAs(nonce, zxid)
		await(t, a, nil, func(m zab.Message) bool { return m.Type == zab.MsgPing && m.From == 2 && m.Zxid == zxid })
		return c
	}
	const na, nb = 0xaaaa, 0xbbbb
	admitted(na, 1)
	admitted(nb, 2)         // a restart of the process
	admitted(na, 3)         // the old one's late handshake: one turn
	last := admitted(nb, 4) // the new one redials, having been replaced: two
	require.Empty(t, a.DuplicateIDs())

	c := dialAs(na, 5) // a third turn: both are alive
	require.NoError(t, c.SetReadDeadline(time.Now().Add(waitFor)))
	r, err := readRefusal(c)
	require.NoError(t, err)
	require.Equal(t, refuseDuplicateID, r.code)
	require.Contains(t, r.reason, "two servers are running with id 2")
	require.Equal(t, []int64{2}, a.DuplicateIDs())
	skipped := await(t, a, nil, isType(zab.MsgLinkDown, 2))
	require.Empty(t, skipped, "the refused connection delivered nothing")
	require.NoError(t, last.SetReadDeadline(time.Now().Add(waitFor)))
	_, err = readRefusal(last)
	require.Error(t, err, "the other one's connection was closed")
	require.NotErrorIs(t, err, errPeerSpoke)

	r = refusalOf(t, addr, appendHandshake(nil, 2, 1, nb))
	require.Equal(t, refuseDuplicateID, r.code, "and it is refused too")
}
