package disk

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// TestCrashProperty runs random appends, syncs, truncations and crashes
// (with torn writes) on a MemFS and checks that after every crash the log
// holds exactly a prefix of what was appended, including every record a
// Sync reported durable.
func TestCrashProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		m := NewMemFS()
		opts := LogOptions{FS: m, SegmentSize: rapid.Int64Range(64, 1024).Draw(rt, "segmentSize"), Logger: quiet()}
		l, err := OpenLog("/db", opts)
		require.NoError(rt, err)
		var model []Record
		durable := int64(0)
		lastZ := func() int64 {
			if len(model) == 0 {
				return 0
			}
			return model[len(model)-1].Zxid
		}
		crash := func() {
			m.CrashWith(func(_ string, unsynced int) int {
				return rapid.IntRange(0, unsynced).Draw(rt, "tear")
			})
			l, err = OpenLog("/db", opts)
			require.NoError(rt, err)
			got := readAll(rt, l, 0)
			require.LessOrEqual(rt, len(got), len(model), "more records than appended")
			for i, r := range got {
				require.Equal(rt, model[i].Zxid, r.Zxid, "record %d", i)
				require.True(rt, bytes.Equal(model[i].Data, r.Data), "record %d", i)
			}
			if durable > 0 {
				require.NotEmpty(rt, got)
				require.GreaterOrEqual(rt, got[len(got)-1].Zxid, durable, "lost a synced record")
			}
			model = got
			durable = lastZ()
			require.Equal(rt, durable, l.LastZxid())
		}
		steps := rapid.IntRange(1, 50).Draw(rt, "steps")
		for i := 0; i < steps; i++ {
			switch op := rapid.IntRange(0, 9).Draw(rt, "op"); {
			case op < 5:
				n := rapid.IntRange(1, 4).Draw(rt, "batch")
				var batch []Record
				z := lastZ()
				for j := 0; j < n; j++ {
					if rapid.IntRange(0, 9).Draw(rt, "newEpoch") == 0 {
						z = (z>>32 + 1) << 32
					}
					z++
					size := rapid.IntRange(0, 80).Draw(rt, "size")
					batch = append(batch, Record{Zxid: z, Data: txnPayload(z, bytes.Repeat([]byte{byte(z)}, size))})
				}
				require.NoError(rt, l.Append(batch...))
				model = append(model, batch...)
			case op < 7:
				d, err := l.Sync()
				require.NoError(rt, err)
				require.GreaterOrEqual(rt, d, lastZ())
				durable = d
			case op < 8:
				if len(model) == 0 {
					continue
				}
				k := rapid.IntRange(0, len(model)).Draw(rt, "keep")
				z := int64(0)
				if k > 0 {
					z = model[k-1].Zxid
				}
				require.NoError(rt, l.TruncateAfter(z))
				model = model[:k]
				durable = z
			case op < 9:
				crash()
			default:
				requireRecords(rt, model, readAll(rt, l, 0))
			}
		}
		crash()
		require.NoError(rt, l.Close())
	})
}
