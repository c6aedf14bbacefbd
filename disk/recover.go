package disk

import (
	"errors"
	"fmt"
	"io"
	"slices"
)

// Recover rebuilds state at start-up from the snapshots in snapDir and the
// log, reading snapshots through the log's FS.
//
// It loads the newest snapshot that verifies through load, then calls replay
// for every log record after the snapshot's zxid, in order, and returns the
// last zxid recovered. If the newest snapshot is corrupt it falls back to an
// older one, with a warning, only when the log covers the gap: it must hold
// every record after the older snapshot (its first zxid is at most one past
// it) and reach at least the newest snapshot's zxid; otherwise Recover fails
// rather than go back in time. With no snapshot at all, the log is replayed
// from the start and must begin at the first transaction of an epoch
// (counter 0 or 1). The records replayed must follow each other without a
// gap (see Follows): a missing txn fails Recover with the file and offset
// of the record after it.
func Recover(snapDir string, log *Log, load func(zxid int64, body io.Reader) error, replay func(Record) error) (int64, error) {
	snaps, err := ListSnapshotsFS(log.fs, snapDir)
	if err != nil {
		return 0, err
	}
	first, last := log.FirstZxid(), log.LastZxid()
	base, loaded := int64(0), false
	// skipped are the corrupt snapshots newer than the one loaded, newest
	// first: the log must hold the txn each one ends at (see below).
	var skipped []SnapshotInfo
	for i, s := range snaps {
		z, body, err := OpenSnapshotFS(log.fs, s.Path)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				return 0, err
			}
			log.logger.Warn("disk: skipping corrupt snapshot", "file", s.Path, "err", err)
			skipped = append(skipped, s)
			continue
		}
		if i > 0 {
			if first == 0 || first > z+1 || last < snaps[0].Zxid {
				_ = body.Close()
				return 0, fmt.Errorf("disk: recover: newest snapshot %s is corrupt and the log (zxids %#x..%#x) does not bridge from snapshot %s to %#x: %w",
					snaps[0].Path, first, last, s.Path, snaps[0].Zxid, ErrCorrupt)
			}
			log.logger.Warn("disk: recovering from an older snapshot", "file", s.Path, "newest", snaps[0].Path)
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
	// Every snapshot failed, so the log alone must hold the whole history:
	// a snapshot names txns up to its zxid, so the log must start no later
	// than the oldest one (a log that begins a later epoch is what is left
	// after a SNAP from the leader, not the start of history).
	if !loaded && len(snaps) > 0 {
		if oldest := snaps[len(snaps)-1]; oldest.Zxid > 0 && first > oldest.Zxid {
			return 0, fmt.Errorf("disk: recover: no valid snapshot in %s and the log starts at %#x, after snapshot %s: "+
				"the txns before it are only in the damaged snapshots; restore a snapshot, or start this server empty "+
				"so that it syncs from the leader: %w", snapDir, first, oldest.Path, ErrCorrupt)
		}
	}
	// A snapshot's zxid is a txn its server applied, so a log that bridges
	// a damaged snapshot holds that txn, unless the snapshot is a leader's
	// SNAP, whose txns this server never logged: the log then jumps from
	// its old history past the snapshot into a later epoch, a gap Follows
	// cannot see (the next epoch starts at counter 1 whatever the last one
	// ended at). Replay must pass through every skipped snapshot's zxid.
	slices.Reverse(skipped) // oldest first, in replay order
	recovered := base
	err = log.readFrom(base, func(r Record, file string, off int64) error {
		if !Follows(recovered, r.Zxid) && !(recovered == 0 && !loaded) {
			return fmt.Errorf("disk: recover: %s: the txn at offset %d has zxid %#x, but the one before it (from %s) is %#x: "+
				"txns are missing (a log file was lost or deleted); restore the missing log file, or start from a "+
				"snapshot that covers the gap: %w", file, off, r.Zxid, recoveredFrom(recovered, base, loaded, snapDir), recovered, ErrCorrupt)
		}
		for len(skipped) > 0 && skipped[0].Zxid <= recovered {
			skipped = skipped[1:]
		}
		if len(skipped) > 0 && r.Zxid > skipped[0].Zxid {
			return fmt.Errorf("disk: recover: %s: the log goes from %#x to %#x (offset %d) without the txn %#x the damaged snapshot %s ends at: "+
				"the txns up to it are only in that snapshot (a snapshot from the leader); restore a snapshot, or start "+
				"this server empty so that it syncs from the leader: %w", file, recovered, r.Zxid, off, skipped[0].Zxid, skipped[0].Path, ErrCorrupt)
		}
		if err := replay(r); err != nil {
			return fmt.Errorf("disk: recover: replay zxid %#x (%s at offset %d): %w", r.Zxid, file, off, err)
		}
		recovered = r.Zxid
		return nil
	})
	if err != nil {
		return 0, err
	}
	return recovered, nil
}

// Follows reports whether zxid z can come right after prev in a log: the
// next counter of the same epoch, or the first txn (counter 1) of a later
// epoch, as ZAB numbers them. Anything else means txns are missing.
func Follows(prev, z int64) bool {
	if z == prev+1 {
		return true
	}
	return z>>32 > prev>>32 && uint32(z) == 1
}

// recoveredFrom says where the zxid before a gap came from, for the error.
func recoveredFrom(zxid, base int64, loaded bool, snapDir string) string {
	if zxid == base && loaded {
		return fmt.Sprintf("the snapshot in %s", snapDir)
	}
	return "the log"
}
