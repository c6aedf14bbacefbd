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
						damageSnapshot(t, m, p)
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

// damageSnapshot cuts the snapshot file p on m to 100 bytes: a snapshot
// Recover must find corrupt.
func damageSnapshot(t *testing.T, m *MemFS, p string) {
	t.Helper()
	f, err := m.OpenFile(p, os.O_RDWR, 0)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(100))
	require.NoError(t, f.Close())
}
