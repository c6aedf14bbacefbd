package zktcp

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
)

// holdFirst sets a hook on tr that, the first time ev happens for peer,
// reports it on the returned channel and waits until release is closed.
// Any other event is reported (without waiting) on events, when it has
// room.
func holdFirst(tr *Transport, peer int64, ev hookEvent, release <-chan struct{}) (held <-chan struct{}, events <-chan hookEvent) {
	h := make(chan struct{})
	evs := make(chan hookEvent, 16)
	var once sync.Once
	f := func(e hookEvent, p int64) {
		if p != peer {
			return
		}
		first := false
		if e == ev {
			once.Do(func() { first = true })
		}
		if first {
			close(h)
			<-release
			return
		}
		select {
		case evs <- e:
		default:
		}
	}
	tr.testHook.Store(&f)
	return h, evs
}

func waitFor(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10s", what)
	}
}

func waitEvent(t *testing.T, evs <-chan hookEvent, want hookEvent) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-evs:
			if e == want {
				return
			}
		case <-deadline:
			t.Fatalf("no hook event %d within 10s", want)
		}
	}
}

// TestZKTCPOldLinkDownGoesBeforeTheNewLinksFollowerInfo: learner 2's
// link breaks and its MsgLinkDown is on its way to the leader's engine
// (held here) when learner 2's next connection brings a FOLLOWERINFO.
// The engine forgets the FOLLOWERINFOs of a learner whose link went down,
// so the new FOLLOWERINFO must reach it after that MsgLinkDown: before
// the fix it overtook it, was forgotten, and the leader waited
// initLimit·tickTime for a quorum.
func TestZKTCPOldLinkDownGoesBeforeTheNewLinksFollowerInfo(t *testing.T) {
	leader, evs, release := breakFirstLink(t, hookLinkDown, "MsgLinkDown of the first link")

	_ = dialLearner(t, leader, 2, 0x2a)
	deadline := time.After(10 * time.Second)
	for waiting := false; !waiting; {
		select {
		case m := <-leader.Recv():
			t.Fatalf("the engine got %v from %d while the old link's MsgLinkDown was still on its way", m.Type, m.From)
		case e := <-evs:
			waiting = e == hookWaitPrev
		case <-deadline:
			t.Fatal("the new link neither delivered nor waited within 10s")
		}
	}
	close(release)
	require.Equal(t, int64(2), recv(t, leader, zab.MsgLinkDown).From)
	require.Equal(t, int64(2), recv(t, leader, zab.MsgFollowerInfo).From, "the new link's FOLLOWERINFO comes after")
}

// TestZKTCPReplacedLinkEndsQuietly: learner 2's link breaks, but before
// its end reaches the engine learner 2's next connection replaces it and
// delivers its FOLLOWERINFO. The old link's MsgLinkDown is no news then
// and would make the engine forget that FOLLOWERINFO: it is not
// delivered.
func TestZKTCPReplacedLinkEndsQuietly(t *testing.T) {
	leader, evs, release := breakFirstLink(t, hookEnded, "end of the first link")

	_ = dialLearner(t, leader, 2, 0x2a)
	require.Equal(t, int64(2), recv(t, leader, zab.MsgFollowerInfo).From)
	close(release)
	waitEvent(t, evs, hookEndedDone)
	select {
	case m := <-leader.Recv():
		t.Fatalf("the engine got %v from %d after the link's replacement", m.Type, m.From)
	default:
	}
}

// breakFirstLink makes a leader of a 3-server cluster, connects learner
// 2 and breaks its link, holding that link at hook until release is
// closed (closed at the end of t anyway). It returns the leader, the hook
// events and release once the link is held.
func breakFirstLink(t *testing.T, hook hookEvent, what string) (*Transport, <-chan hookEvent, chan struct{}) {
	t.Helper()
	leader := cluster(t, 3)[0]
	leader.SetRole(zab.Leading, 1)
	release := make(chan struct{})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	held, evs := holdFirst(leader, 2, hook, release)
	c1 := dialLearner(t, leader, 2, 0x2a)
	require.Equal(t, int64(2), recv(t, leader, zab.MsgFollowerInfo).From)
	require.NoError(t, c1.Close())
	waitFor(t, held, what)
	return leader, evs, release
}
