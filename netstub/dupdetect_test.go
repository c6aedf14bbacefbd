package netstub

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
