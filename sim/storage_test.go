package sim

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/disk"
	"github.com/zabkeeper/zabkeeper/engine/zab"
)

// storageRecs returns records for zxids from..to whose payloads start with
// a TxnHeader of their zxid, as the log requires (an error txn, type -1).
func storageRecs(from, to int64) []disk.Record {
	var out []disk.Record
	for z := from; z <= to; z++ {
		b := make([]byte, disk.TxnHeaderSize, disk.TxnHeaderSize+8)
		binary.BigEndian.PutUint64(b[0:], 0x100)
		binary.BigEndian.PutUint32(b[8:], uint32(z))
		binary.BigEndian.PutUint64(b[12:], uint64(z))
		binary.BigEndian.PutUint64(b[20:], uint64(1_700_000_000_000+z))
		binary.BigEndian.PutUint32(b[28:], 0xffffffff)
		out = append(out, disk.Record{Zxid: z, Data: append(b, byte(z), 1, 2, 3, 4, 5, 6, 7)})
	}
	return out
}

func lastZxid(d Durable) int64 {
	if n := len(d.Log); n > 0 {
		return d.Log[n-1].Zxid
	}
	return 0
}

// An fsync issued with a batch makes it durable only when the fsync event
// completes it: a crash before loses it (keep 0), a crash after does not.
func TestStorageFsyncCompletesInVirtualTime(t *testing.T) {
	const e1 = int64(1) << 32
	st := newStorage(false)
	_, _, err := st.open(discardLogger)
	require.NoError(t, err)
	require.NoError(t, st.saveHardState(zab.HardState{AcceptedEpoch: 1, CurrentEpoch: 1}))
	seq1, err := st.appendAndIssue(storageRecs(e1+1, e1+5), false)
	require.NoError(t, err)
	require.NoError(t, st.complete(seq1))
	_, err = st.appendAndIssue(storageRecs(e1+6, e1+9), false)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 2))
	lost, torn := st.crash(rng, 0, 0)
	require.Positive(t, lost)
	require.False(t, torn)
	d, _, err := st.open(discardLogger)
	require.NoError(t, err)
	require.Equal(t, e1+5, lastZxid(d), "the completed fsync's records survive, the pending one's do not")
	require.Equal(t, zab.HardState{AcceptedEpoch: 1, CurrentEpoch: 1}, d.HardState)

	// Completed this time: nothing is lost.
	seq, err := st.appendAndIssue(storageRecs(e1+6, e1+9), false)
	require.NoError(t, err)
	require.NoError(t, st.complete(seq))
	lost, _ = st.crash(rng, 0, 1)
	require.Zero(t, lost)
	d, _, err = st.open(discardLogger)
	require.NoError(t, err)
	require.Equal(t, e1+9, lastZxid(d))
}

// A torn write leaves part of a record behind; disk.OpenLog cuts it and
// keeps every whole record before it.
func TestStorageTornWriteRecovers(t *testing.T) {
	const e1 = int64(1) << 32
	for seed := uint64(1); seed <= 20; seed++ {
		st := newStorage(false)
		_, _, err := st.open(discardLogger)
		require.NoError(t, err)
		seq, err := st.appendAndIssue(storageRecs(e1+1, e1+3), false)
		require.NoError(t, err)
		require.NoError(t, st.complete(seq))
		_, err = st.appendAndIssue(storageRecs(e1+4, e1+12), false)
		require.NoError(t, err)
		_, torn := st.crash(rand.New(rand.NewPCG(seed, 0)), 0, 1)
		require.True(t, torn)
		d, _, err := st.open(discardLogger)
		require.NoError(t, err, "seed %d", seed)
		require.GreaterOrEqual(t, lastZxid(d), e1+3)
		require.Less(t, lastZxid(d), e1+12)
		for i, e := range d.Log {
			require.Equal(t, e1+1+int64(i), e.Zxid)
		}
	}
}

// An injected fsync error fails inside disk.Log, which refuses more
// appends; the restart recovers only what was durable.
func TestStorageFsyncError(t *testing.T) {
	const e1 = int64(1) << 32
	st := newStorage(false)
	_, _, err := st.open(discardLogger)
	require.NoError(t, err)
	seq, err := st.appendAndIssue(storageRecs(e1+1, e1+3), false)
	require.NoError(t, err)
	require.NoError(t, st.complete(seq))
	_, err = st.appendAndIssue(storageRecs(e1+4, e1+6), true)
	require.ErrorIs(t, err, disk.ErrInjected)
	require.Error(t, st.log.Append(storageRecs(e1+7, e1+7)...), "a failed log takes no more appends")
	st.crash(rand.New(rand.NewPCG(1, 1)), 1, 0)
	d, _, err := st.open(discardLogger)
	require.NoError(t, err)
	require.Equal(t, e1+3, lastZxid(d))
}

// A lying disk acknowledges fsyncs it never performs.
func TestStorageLyingDisk(t *testing.T) {
	const e1 = int64(1) << 32
	st := newStorage(true)
	_, _, err := st.open(discardLogger)
	require.NoError(t, err)
	seq, err := st.appendAndIssue(storageRecs(e1+1, e1+3), false)
	require.NoError(t, err)
	require.NoError(t, st.complete(seq))
	st.crash(rand.New(rand.NewPCG(1, 1)), 0, 0)
	d, _, err := st.open(discardLogger)
	require.NoError(t, err)
	require.Empty(t, d.Log)
}

// Corruption is detected by the real recovery code: a flipped bit makes
// recovery refuse, or (in bytes recovery does not trust, such as a torn
// tail) leaves only records that were written.
func TestStorageCorruptionDetected(t *testing.T) {
	const e1 = int64(1) << 32
	refused := 0
	for seed := uint64(1); seed <= 30; seed++ {
		st := newStorage(false)
		_, _, err := st.open(discardLogger)
		require.NoError(t, err)
		seq, err := st.appendAndIssue(storageRecs(e1+1, e1+40), false)
		require.NoError(t, err)
		require.NoError(t, st.complete(seq))
		st.crash(rand.New(rand.NewPCG(seed, 0)), 1, 0)
		path, err := st.corrupt(rand.New(rand.NewPCG(seed, 9)))
		require.NoError(t, err)
		require.NotEmpty(t, path)
		d, _, err := st.open(discardLogger)
		if err != nil {
			require.ErrorIs(t, err, disk.ErrCorrupt)
			refused++
			continue
		}
		want := storageRecs(e1+1, e1+40)
		for i, e := range d.Log {
			require.Equal(t, want[i].Zxid, e.Zxid, "seed %d", seed)
			require.Equal(t, want[i].Data, e.Data, "seed %d: a flipped bit read back as data", seed)
		}
	}
	require.Positive(t, refused)
}
