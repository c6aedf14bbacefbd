package disk

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A server that installed the leader's snapshot keeps its older log records
// and logs on after the snapshot, so its log has a gap the snapshot covers.
// When that snapshot turns out corrupt, an older one plus the log does not
// rebuild the state: recovery must refuse rather than skip the txns in the
// gap (the simulator found it replaying 0x200000009 then 0x300000017).
func TestRecoverRefusesGapBehindCorruptSnapshot(t *testing.T) {
	const e1, e2, e3 = int64(1) << 32, int64(2) << 32, int64(3) << 32
	for _, corrupt := range []bool{false, true} {
		m := NewMemFS()
		l, err := OpenLog("/log", LogOptions{FS: m, SegmentSize: 120, Logger: quiet()})
		require.NoError(t, err)
		require.NoError(t, l.Append(recs(e1+1, e1+20)...))
		require.NoError(t, l.Append(recs(e2+1, e2+9)...))
		writeSnap(t, m, "/data", e1+10, snapBodyFor(10, 300))
		p := writeSnap(t, m, "/data", e3+22, snapBodyFor(22, 300)) // installed from the leader
		require.NoError(t, l.Append(recs(e3+23, e3+30)...))
		if corrupt {
			damageSnapshot(t, m, p)
		}
		var r recovered
		last, err := Recover("/data", l, r.load, r.replay)
		if corrupt {
			require.ErrorIs(t, err, ErrCorrupt)
			require.Contains(t, err.Error(), "0x200000009")
			require.Contains(t, err.Error(), "0x300000017")
		} else {
			require.NoError(t, err)
			require.Equal(t, e3+22, r.snap)
			require.Equal(t, e3+30, last)
		}
		require.NoError(t, l.Close())
	}
}

// A learner that installed the leader's snapshot and logged on after it,
// with that snapshot (its only one) corrupt, holds a log that begins a later
// epoch: it is what is left after the SNAP, not the start of history.
// Recovery must refuse rather than rebuild the tree from that log alone
// (the simulator found an observer applying 0x300000001 after 0x0, seed 689).
func TestRecoverRefusesLogAfterOnlyCorruptSnapshot(t *testing.T) {
	const e2, e3 = int64(2) << 32, int64(3) << 32
	for _, corrupt := range []bool{false, true} {
		m := NewMemFS()
		l, err := OpenLog("/log", LogOptions{FS: m, Logger: quiet()})
		require.NoError(t, err)
		p := writeSnap(t, m, "/data", e2+22, snapBodyFor(22, 300)) // installed from the leader
		require.NoError(t, l.Append(recs(e3+1, e3+2)...))
		if corrupt {
			damageSnapshot(t, m, p)
		}
		var r recovered
		last, err := Recover("/data", l, r.load, r.replay)
		if corrupt {
			require.ErrorIs(t, err, ErrCorrupt)
			require.Contains(t, err.Error(), "starts at 0x300000001")
			require.Empty(t, r.replayed)
		} else {
			require.NoError(t, err)
			require.Equal(t, e2+22, r.snap)
			require.Equal(t, e3+2, last)
		}
		require.NoError(t, l.Close())
	}
}

// TestRecoverRefusesCrossEpochGapUnderCorruptSnapshot: a learner logged
// epoch 2 up to e2+10, took the leader's SNAP at e2+30 (snapshot file only,
// its txns never logged) and logged epoch 3 after it. With that snapshot
// damaged, falling back to an older snapshot or to none would replay
// e2+10 then e3+1: Follows accepts the jump to a new epoch, yet e2+11..e2+30
// are missing. Recover must refuse; a damaged snapshot whose txn the log
// does hold is bridged as before.
func TestRecoverRefusesCrossEpochGapUnderCorruptSnapshot(t *testing.T) {
	const e2, e3 = int64(2) << 32, int64(3) << 32
	for _, older := range []bool{false, true} {
		m := NewMemFS()
		l, err := OpenLog("/log", LogOptions{FS: m, Logger: quiet()})
		require.NoError(t, err)
		require.NoError(t, l.Append(recs(e2+1, e2+10)...))
		if older {
			writeSnap(t, m, "/data", e2+5, snapBodyFor(5, 300))
		}
		damageSnapshot(t, m, writeSnap(t, m, "/data", e2+30, snapBodyFor(30, 300)))
		require.NoError(t, l.Append(recs(e3+1, e3+3)...))
		var r recovered
		_, err = Recover("/data", l, r.load, r.replay)
		require.ErrorIs(t, err, ErrCorrupt, "older snapshot %v", older)
		require.Contains(t, err.Error(), "without the txn 0x20000001e")
		require.NotContains(t, r.replayed, e3+1, "nothing of epoch 3 is applied over the gap")
		require.NoError(t, l.Close())
	}

	// The damaged snapshot's txn is in the log: recovery bridges it.
	m := NewMemFS()
	l, err := OpenLog("/log", LogOptions{FS: m, Logger: quiet()})
	require.NoError(t, err)
	require.NoError(t, l.Append(recs(e2+1, e2+10)...))
	writeSnap(t, m, "/data", e2+5, snapBodyFor(5, 300))
	damageSnapshot(t, m, writeSnap(t, m, "/data", e2+8, snapBodyFor(8, 300)))
	require.NoError(t, l.Append(recs(e3+1, e3+3)...))
	var r recovered
	last, err := Recover("/data", l, r.load, r.replay)
	require.NoError(t, err)
	require.Equal(t, e2+5, r.snap)
	require.Equal(t, e3+3, last)
	require.NoError(t, l.Close())
}
