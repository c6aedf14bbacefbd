package disk

import (
	"errors"
	"fmt"
	"io"
)

// Recover rebuilds state at start-up from the snapshots in snapDir and the
// log, reading snapshots through the log's FS.
//
// It loads the newest snapshot that verifies through load, then calls replay
// for every log record after the snapshot's zxid, in order, and returns the
// last zxid recovered. If the newest snapshot is corrupt it falls back to an
// older one, with a warning, only when the log covers the gap: it must hold
// every record after the older snapshot (its first zxid is at most one past
// it), reach at least the newest snapshot's zxid, and hold no gap up to it
// (each record the next of its epoch, or the first of a later epoch: a
// server that installed the leader's snapshot keeps its older records but
// has none between them and the snapshot); otherwise Recover fails rather
// than go back in time or skip txns. With no snapshot at all, the log is replayed
// from the start and must begin at the first transaction of an epoch
// (counter 0 or 1).
func Recover(snapDir string, log *Log, load func(zxid int64, body io.Reader) error, replay func(Record) error) (int64, error) {
	snaps, err := ListSnapshotsFS(log.fs, snapDir)
	if err != nil {
		return 0, err
	}
	first, last := log.FirstZxid(), log.LastZxid()
	base, loaded := int64(0), false
	bridgeTo := int64(0) // the log must be gapless up to here

	for i, s := range snaps {
		z, body, err := OpenSnapshotFS(log.fs, s.Path)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				return 0, err
			}
			log.logger.Warn("disk: skipping corrupt snapshot", "file", s.Path, "err", err)
			continue
		}
		if i > 0 {
			if first == 0 || first > z+1 || last < snaps[0].Zxid {
				_ = body.Close()
				return 0, fmt.Errorf("disk: recover: newest snapshot %s is corrupt and the log (zxids %#x..%#x) does not bridge from snapshot %s to %#x: %w",
					snaps[0].Path, first, last, s.Path, snaps[0].Zxid, ErrCorrupt)
			}
			log.logger.Warn("disk: recovering from an older snapshot", "file", s.Path, "newest", snaps[0].Path)
			bridgeTo = snaps[0].Zxid
		}
		err = load(z, body)
		_ = body.Close()
		if err != nil {
			return 0, fmt.Errorf("disk: recover: load snapshot %s: %w", s.Path, err)
		}
		base, loaded = z, true
		break
	}
	if !loaded && first != 0 && uint32(first) > 1 {
		return 0, fmt.Errorf("disk: recover: no valid snapshot in %s and the log starts at %#x, not at the first transaction of an epoch: %w", snapDir, first, ErrCorrupt)
	}
	if !loaded && len(snaps) > 0 && last < snaps[0].Zxid {
		return 0, fmt.Errorf("disk: recover: no valid snapshot in %s and the log ends at %#x, before the newest snapshot %s: %w", snapDir, last, snaps[0].Path, ErrCorrupt)
	}
	if !loaded && len(snaps) > 0 {
		bridgeTo = snaps[0].Zxid
	}
	recovered := base
	err = log.ReadFrom(base, func(r Record) error {
		if recovered < bridgeTo && recovered != 0 && !nextZxid(recovered, r.Zxid) {
			return fmt.Errorf("disk: recover: snapshot %s is corrupt and the log does not bridge to it: it jumps from %#x to %#x: %w",
				snaps[0].Path, recovered, r.Zxid, ErrCorrupt)
		}
		if err := replay(r); err != nil {
			return fmt.Errorf("disk: recover: replay zxid %#x: %w", r.Zxid, err)
		}
		recovered = r.Zxid
		return nil
	})
	if err != nil {
		return 0, err
	}
	return recovered, nil
}

// nextZxid reports whether z can follow prev in a gapless history: the next
// txn of prev's epoch, or the first of a later epoch (counter 0 or 1).
func nextZxid(prev, z int64) bool {
	pe, pc := prev>>32, uint32(prev)
	ze, zc := z>>32, uint32(z)
	return (ze == pe && zc == pc+1) || (ze > pe && zc <= 1)
}
