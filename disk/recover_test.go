package disk

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

type recovered struct {
	snap     int64
	snapBody []byte
	loaded   bool
	replayed []int64
}

func (r *recovered) load(z int64, body io.Reader) error {
	b, err := io.ReadAll(body)
	r.snap, r.snapBody, r.loaded = z, b, true
	return err
}

func (r *recovered) replay(rec Record) error {
	r.replayed = append(r.replayed, rec.Zxid)
	return nil
}

func zrange(from, to int64) []int64 {
	var out []int64
	for z := from; z <= to; z++ {
		out = append(out, z)
	}
	return out
}

func TestRecover(t *testing.T) {
	const e1 = int64(1) << 32
	type setup struct {
		snaps   []int64
		corrupt []int64
		log     [2]int64 // appended zxids e1+from..e1+to
		purge   int64    // PurgeBefore(e1+purge) when not zero
	}
	cases := []struct {
		name     string
		setup    setup
		wantSnap int64 // counter of the loaded snapshot, -1 for none
		wantLast int64
		wantErr  bool
	}{
		{name: "log only", setup: setup{log: [2]int64{1, 30}}, wantSnap: -1, wantLast: 30},
		{name: "empty", setup: setup{}, wantSnap: -1, wantLast: 0},
		{name: "snapshot and log", setup: setup{snaps: []int64{10, 20}, log: [2]int64{1, 30}}, wantSnap: 20, wantLast: 30},
		{name: "snapshot newer than log", setup: setup{snaps: []int64{40}, log: [2]int64{1, 30}}, wantSnap: 40, wantLast: 40},
		{name: "snapshot and purged log", setup: setup{snaps: []int64{10, 20}, log: [2]int64{1, 30}, purge: 20}, wantSnap: 20, wantLast: 30},
		{name: "corrupt newest, log bridges", setup: setup{snaps: []int64{10, 20}, corrupt: []int64{20}, log: [2]int64{1, 30}}, wantSnap: 10, wantLast: 30},
		{name: "corrupt newest, log purged", setup: setup{snaps: []int64{10, 20}, corrupt: []int64{20}, log: [2]int64{1, 30}, purge: 18}, wantErr: true},
		{name: "corrupt newest, log too short", setup: setup{snaps: []int64{10, 40}, corrupt: []int64{40}, log: [2]int64{1, 30}}, wantErr: true},
		{name: "all corrupt, whole log", setup: setup{snaps: []int64{10}, corrupt: []int64{10}, log: [2]int64{1, 30}}, wantSnap: -1, wantLast: 30},
		{name: "no snapshot, log not from the start", setup: setup{log: [2]int64{5, 30}}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMemFS()
			l, err := OpenLog("/log", LogOptions{FS: m, SegmentSize: 120, Logger: quiet()})
			require.NoError(t, err)
			defer l.Close()
			if tc.setup.log[1] > 0 {
				require.NoError(t, l.Append(recs(e1+tc.setup.log[0], e1+tc.setup.log[1])...))
			}
			if tc.setup.purge != 0 {
				require.NoError(t, l.PurgeBefore(e1+tc.setup.purge))
			}
			for _, s := range tc.setup.snaps {
				p := writeSnap(t, m, "/data", e1+s, snapBodyFor(s, 300))
				for _, c := range tc.setup.corrupt {
					if c == s {
						f, err := m.OpenFile(p, os.O_RDWR, 0)
						require.NoError(t, err)
						require.NoError(t, f.Truncate(100))
						require.NoError(t, f.Close())
					}
				}
			}
			var r recovered
			last, err := Recover("/data", l, r.load, r.replay)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			if tc.wantSnap < 0 {
				require.False(t, r.loaded)
			} else {
				require.True(t, r.loaded)
				require.Equal(t, e1+tc.wantSnap, r.snap)
				require.True(t, bytes.Equal(snapBodyFor(tc.wantSnap, 300), r.snapBody))
			}
			if tc.wantLast == 0 {
				require.Zero(t, last)
				return
			}
			require.Equal(t, e1+tc.wantLast, last)
			from := max(tc.wantSnap+1, tc.setup.log[0])
			var want []int64
			for _, z := range zrange(from, tc.setup.log[1]) {
				want = append(want, e1+z)
			}
			require.Equal(t, want, r.replayed)
		})
	}
}

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
			f, err := m.OpenFile(p, os.O_RDWR, 0)
			require.NoError(t, err)
			require.NoError(t, f.Truncate(100))
			require.NoError(t, f.Close())
		}
		var r recovered
		last, err := Recover("/data", l, r.load, r.replay)
		if corrupt {
			require.ErrorIs(t, err, ErrCorrupt)
			require.Contains(t, err.Error(), "jumps from 0x200000009 to 0x300000017")
		} else {
			require.NoError(t, err)
			require.Equal(t, e3+22, r.snap)
			require.Equal(t, e3+30, last)
		}
		require.NoError(t, l.Close())
	}
}

func TestNextZxid(t *testing.T) {
	const e1, e2 = int64(1) << 32, int64(2) << 32
	require.True(t, nextZxid(e1+4, e1+5))
	require.True(t, nextZxid(e1+4, e2+1))
	require.True(t, nextZxid(e1, e1+1))
	require.False(t, nextZxid(e1+4, e1+6))
	require.False(t, nextZxid(e1+4, e2+2))
	require.False(t, nextZxid(e2+1, e1+2))
}
