package sim

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"

	"github.com/zabkeeper/zabkeeper/engine/zab"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// record is one txn in a simulated log, with the CRC a real log stores.
type record struct {
	zxid   int64
	data   []byte
	crc    uint32
	seq    uint64 // append order, for fsync coverage
	synced bool
}

func recordCRC(zxid int64, data []byte) uint32 {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(zxid))
	return crc32.Update(crc32.Checksum(b[:], castagnoli), castagnoli, data)
}

// disk is one server's simulated storage: the epoch files, one snapshot and
// the txn log. The epochs, truncations and snapshots are written durably at
// once (they are small and rare); log appends are durable only once an fsync
// completes, a latency later. A crash keeps the synced records and a random
// prefix of the unsynced ones, and may tear the first record it loses.
//
// Recovery checks every record's CRC as the real disk package does: a bad
// last record is a torn write and is cut off; a bad record before the last,
// or a bad snapshot, is corruption: recovery refuses, and the simulator keeps
// that server down for the rest of the run (it never wipes and re-syncs a
// voter, which could lose acknowledged txns when a quorum overlaps it).
type disk struct {
	hard     zab.HardState
	snapZxid int64
	snap     []byte
	snapCRC  uint32
	log      []record
	seq      uint64
	// busyUntil is when the fsync in progress ends; fsyncs complete in order.
	busyUntil int64
	// tornTail marks the last record as torn by a crash.
	tornTail bool
}

// append adds unsynced records and returns the append sequence number an
// fsync must reach to cover them.
func (d *disk) append(es []zab.Entry) uint64 {
	for _, e := range es {
		d.seq++
		d.log = append(d.log, record{zxid: e.Zxid, data: e.Data, crc: recordCRC(e.Zxid, e.Data), seq: d.seq})
	}
	return d.seq
}

// fsync makes every record appended up to seq durable and returns the zxid
// of the newest such record still in the log (false if none).
func (d *disk) fsync(seq uint64) (int64, bool) {
	var last int64
	ok := false
	for i := range d.log {
		if d.log[i].seq > seq {
			break
		}
		d.log[i].synced = true
		last, ok = d.log[i].zxid, true
	}
	return last, ok
}

// truncate durably drops records after zxid.
func (d *disk) truncate(zxid int64) {
	i := len(d.log)
	for i > 0 && d.log[i-1].zxid > zxid {
		i--
	}
	d.log = d.log[:i]
}

// installSnapshot durably replaces the state with a snapshot; the log is
// discarded (a SNAP sync replaces both).
func (d *disk) installSnapshot(zxid int64, data []byte) {
	d.snapZxid, d.snap, d.snapCRC = zxid, data, crc32.Checksum(data, castagnoli)
	d.log = nil
}

// compact durably writes a snapshot of applied state at zxid and purges the
// log records it covers.
func (d *disk) compact(zxid int64, data []byte) {
	d.snapZxid, d.snap, d.snapCRC = zxid, data, crc32.Checksum(data, castagnoli)
	i := 0
	for i < len(d.log) && d.log[i].zxid <= zxid {
		i++
	}
	d.log = append([]record(nil), d.log[i:]...)
}

// crash loses unsynced writes: each unsynced record survives with keep
// probability, up to the first lost one; with tear probability that first
// lost record stays behind half-written. It returns how many records were
// lost and whether one was torn.
func (d *disk) crash(r *rand.Rand, keep, tear float64) (lost int, torn bool) {
	d.busyUntil = 0
	for i := range d.log {
		if d.log[i].synced {
			continue
		}
		if r.Float64() < keep {
			d.log[i].synced = true // it reached the platter after all
			continue
		}
		lost = len(d.log) - i
		if r.Float64() < tear {
			rec := d.log[i]
			rec.data = append([]byte(nil), rec.data[:len(rec.data)/2]...)
			d.log = append(d.log[:i], rec)
			d.tornTail, torn = true, true
		} else {
			d.log = d.log[:i]
		}
		return lost, torn
	}
	return 0, false
}

// corrupt flips one bit in a synced record that is not the last one (a bad
// last record would pass for a torn write), or in the snapshot. It reports
// what it damaged, or "" when there is nothing to damage.
func (d *disk) corrupt(r *rand.Rand) string {
	if len(d.log) >= 2 {
		i := r.IntN(len(d.log) - 1)
		rec := &d.log[i]
		if len(rec.data) > 0 {
			data := append([]byte(nil), rec.data...)
			data[r.IntN(len(data))] ^= 1 << r.IntN(8)
			rec.data = data
			return fmt.Sprintf("log record 0x%x", rec.zxid)
		}
	}
	if len(d.snap) > 0 {
		data := append([]byte(nil), d.snap...)
		data[r.IntN(len(data))] ^= 1 << r.IntN(8)
		d.snap = data
		return fmt.Sprintf("snapshot 0x%x", d.snapZxid)
	}
	return ""
}

// recover reads the disk back as a restart would. A torn last record is
// cut off; any other CRC mismatch is an error.
func (d *disk) recover() (Durable, error) {
	if d.snap != nil && crc32.Checksum(d.snap, castagnoli) != d.snapCRC {
		return Durable{}, fmt.Errorf("snapshot 0x%x fails its CRC", d.snapZxid)
	}
	for i, rec := range d.log {
		if recordCRC(rec.zxid, rec.data) == rec.crc {
			continue
		}
		if i == len(d.log)-1 {
			d.log = d.log[:i] // torn tail
			d.tornTail = false
			break
		}
		return Durable{}, fmt.Errorf("log record %d (zxid 0x%x) of %d fails its CRC", i, rec.zxid, len(d.log))
	}
	out := Durable{HardState: d.hard, SnapshotZxid: d.snapZxid, Snapshot: d.snap}
	for _, rec := range d.log {
		out.Log = append(out.Log, zab.Entry{Zxid: rec.zxid, Data: rec.data})
	}
	return out, nil
}

// unsynced counts the records a crash could lose now.
func (d *disk) unsynced() int {
	n := 0
	for i := len(d.log) - 1; i >= 0 && !d.log[i].synced; i-- {
		n++
	}
	return n
}
