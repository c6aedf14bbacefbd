package main

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/zabkeeper/zabkeeper/disk"
	"github.com/zabkeeper/zabkeeper/engine/tree"
)

const datadirUsage = `Usage: zabkeeper datadir verify [--data-log-dir DIR] DATADIR

Checks a data directory (zabkeeper's or Apache ZooKeeper's: the same
files) without starting a server and without changing anything.
Snapshots: each one's structure and both Adler32 seals, and its digest
against the tree it loads (a fuzzy snapshot's digest, recorded for a later
zxid, once the log is replayed up to it). The transaction log: every
record's framing and Adler32 checksum, each file's header and first zxid,
zxids that follow each other without a gap within and across files (a gap
is allowed where a snapshot covers it, as after a snapshot sync), and how
each file ends (end of file, zero fill, a torn record a crash left, or a
corrupt record). Then, as a server starts: the log must continue from the
newest valid snapshot without a gap, and replaying it on top of that
snapshot's tree, every txn's TxnDigest must equal the tree's digest after
it; the txns before the newest snapshot are replayed the same way from
the oldest valid snapshot (from the empty tree when there is none). Prints one line per file, PROBLEM lines with the file and offset, and
exits 1 on any problem (a snapshot that does not verify is one, even where
a server would pass it over for an older one).

Flags:
`

// runDatadir runs "zabkeeper datadir ...".
func runDatadir(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprint(stderr, datadirUsage)
		return 2
	}
	fs := flag.NewFlagSet("datadir verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	logDir := fs.String("data-log-dir", "", "the dataLogDir, when the log is kept apart from DATADIR")
	fs.Usage = func() {
		fmt.Fprint(stderr, datadirUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	dataDir := fs.Arg(0)
	if *logDir == "" {
		*logDir = dataDir
	}
	problems, err := verifyDataDir(stdout, dataDir, *logDir)
	if err != nil {
		fmt.Fprintf(stderr, "zabkeeper: %v\n", err)
		return 1
	}
	if problems > 0 {
		fmt.Fprintf(stdout, "%d problem(s)\n", problems)
		return 1
	}
	fmt.Fprintln(stdout, "ok")
	return 0
}

// verifyDataDir prints what it finds and returns how many problems.
func verifyDataDir(out io.Writer, dataDir, logDir string) (int, error) {
	snaps, err := disk.ListSnapshotsFS(nil, dataDir)
	if err != nil {
		return 0, err
	}
	problems := 0
	// replays[0] replays the log on top of the newest valid snapshot, as a
	// server starts; a second one from the oldest valid snapshot (or, with
	// none, from the empty tree) checks the TxnDigests before the newest.
	var replays []*replay
	var oldest *replay
	for _, s := range snaps { // newest first
		ls, err := loadSnapshot(s)
		if err != nil {
			fmt.Fprintf(out, "%s: PROBLEM: %v\n", s.Path, err)
			problems++
			continue
		}
		fmt.Fprintf(out, "%s: snapshot of zxid 0x%x, %d nodes, %d sessions, %s\n", s.Path, s.Zxid,
			ls.Tree.NodeCount(), len(ls.Sessions), digestNote(ls))
		rp := &replay{snap: filepath.Base(s.Path), zxid: s.Zxid, ls: ls}
		if len(replays) == 0 {
			replays = append(replays, rp)
		} else {
			oldest = rp
		}
	}
	if len(replays) == 0 {
		oldest = &replay{snap: "the empty tree", ls: &tree.LoadedSnapshot{Tree: tree.New(tree.Options{ExtendedTypes: true})}}
	}
	if oldest != nil {
		oldest.secondary = true
		if len(replays) > 0 {
			oldest.until = replays[0].zxid
		}
		replays = append(replays, oldest)
	}
	// covered reports whether a snapshot bridges a gap from a to b.
	covered := func(a, b int64) (string, bool) {
		for _, s := range snaps {
			if s.Zxid >= a && disk.Follows(s.Zxid, b) {
				return filepath.Base(s.Path), true
			}
		}
		return "", false
	}
	paths, names, err := disk.LogFiles(nil, logDir)
	if err != nil {
		return 0, err
	}
	if len(paths) == 0 {
		fmt.Fprintf(out, "%s: no transaction log files\n", filepath.Join(logDir, "version-2"))
	}
	prev, have := int64(0), false
	for i, p := range paths {
		var gaps []string
		end, err := disk.ScanLogFile(nil, p, func(r disk.Record, off int64) error {
			if have && !disk.Follows(prev, r.Zxid) {
				if snap, ok := covered(prev, r.Zxid); ok {
					gaps = append(gaps, fmt.Sprintf("zxids 0x%x..0x%x not in the log, covered by %s", prev+1, r.Zxid-1, snap))
				} else {
					gaps = append(gaps, fmt.Sprintf("PROBLEM: zxid 0x%x at offset %d follows 0x%x: txns are missing", r.Zxid, off, prev))
					problems++
				}
			}
			prev, have = r.Zxid, true
			for _, rp := range replays {
				if msg := rp.apply(r, filepath.Base(p), off); msg != "" {
					gaps = append(gaps, "PROBLEM: "+msg)
					problems++
				}
			}
			return nil
		})
		if err != nil {
			fmt.Fprintf(out, "%s: PROBLEM: %v\n", p, err)
			problems++
			continue
		}
		fmt.Fprintf(out, "%s: %d txns", p, end.Records)
		if end.Records > 0 {
			fmt.Fprintf(out, " 0x%x..0x%x", end.First, end.Last)
		}
		fmt.Fprintf(out, ", data ends at offset %d of %d: %s", end.Offset, end.Size, end.Kind)
		if end.Fault != "" {
			fmt.Fprintf(out, " (%s)", end.Fault)
		}
		fmt.Fprintln(out)
		if end.Records > 0 && end.First != names[i] {
			fmt.Fprintf(out, "  PROBLEM: the first txn is 0x%x, the file name says 0x%x\n", end.First, names[i])
			problems++
		}
		if end.Kind == "corrupt record" {
			problems++
			if i == len(paths)-1 {
				fmt.Fprintf(out, "  PROBLEM: the final record is corrupt (not a torn write): a server refuses to start; "+
					"restore the file, or cut the record with zabkeeper server --truncate-corrupt-tail (it may hold an acknowledged txn)\n")
			} else {
				fmt.Fprintf(out, "  PROBLEM: a corrupt record in a file that is not the last: restore the file from a replica or backup\n")
			}
		}
		for _, g := range gaps {
			fmt.Fprintf(out, "  %s\n", g)
		}
	}
	for _, rp := range replays {
		msg, problem := rp.summary()
		if problem {
			problems++
			msg = "PROBLEM: " + msg
		}
		fmt.Fprintf(out, "replay from %s: %s\n", rp.snap, msg)
	}
	return problems, nil
}

// loadSnapshot verifies a snapshot's seals and structure, and loads its
// tree, which checks the digest recorded for its own zxid.
func loadSnapshot(s disk.SnapshotInfo) (*tree.LoadedSnapshot, error) {
	zxid, body, err := disk.OpenSnapshot(s.Path)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	ls, err := tree.ReadSnapshot(body, tree.Options{ExtendedTypes: true}, zxid)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	return ls, nil
}

func digestNote(ls *tree.LoadedSnapshot) string {
	switch {
	case !ls.HasDigest:
		return "no digest"
	case ls.PendingDigest:
		return fmt.Sprintf("digest recorded for zxid 0x%x (fuzzy: checked once the log is replayed to it)", ls.Digest.Zxid)
	default:
		return "digest matches the tree"
	}
}

// replay applies the log after a snapshot's zxid to its tree, as a server
// does at start, and checks continuity and digests on the way.
type replay struct {
	snap string
	zxid int64 // the snapshot's
	ls   *tree.LoadedSnapshot

	// secondary: a replay from an older snapshot (or the empty tree) to
	// check digests; where the log does not go on from it (purged, or a
	// gap a newer snapshot covers) it stops without a problem, and it
	// stops at until (the newest snapshot's zxid), where the first replay
	// takes over.
	secondary bool
	until     int64

	applied, compared int
	last              int64
	stopped           string // why the replay stopped
}

// apply replays one log record; it returns a problem, or "".
func (rp *replay) apply(r disk.Record, file string, off int64) (problem string) {
	if rp.stopped != "" || r.Zxid <= rp.zxid {
		return ""
	}
	if rp.until != 0 && r.Zxid > rp.until {
		rp.stopped = fmt.Sprintf("up to 0x%x, where the newest snapshot takes over", rp.until)
		return ""
	}
	defer func() {
		if problem != "" {
			rp.stopped = fmt.Sprintf("stopped at %s offset %d", file, off)
		}
	}()
	if rp.secondary && !disk.Follows(max(rp.zxid, rp.last), r.Zxid) {
		rp.stopped = fmt.Sprintf("stopped at %s offset %d: the log does not go on from 0x%x (purged, or a gap a newer snapshot covers)",
			file, off, max(rp.zxid, rp.last))
		return ""
	}
	if rp.applied == 0 && !disk.Follows(rp.zxid, r.Zxid) {
		return fmt.Sprintf("%s offset %d: the log goes on from %s with zxid 0x%x: txns 0x%x..0x%x are in neither",
			file, off, rp.snap, r.Zxid, rp.zxid+1, r.Zxid-1)
	}
	txn, err := tree.UnmarshalTxn(r.Data)
	if err != nil {
		return fmt.Sprintf("%s offset %d: txn 0x%x does not decode: %v", file, off, r.Zxid, err)
	}
	if msg := applySafely(rp.ls.Tree, txn); msg != "" {
		return fmt.Sprintf("%s offset %d: txn 0x%x: %s", file, off, r.Zxid, msg)
	}
	rp.applied++
	rp.last = r.Zxid
	t := rp.ls.Tree
	if rp.ls.PendingDigest {
		d := rp.ls.Digest
		if r.Zxid < d.Zxid {
			return "" // the fuzzy snapshot's tree is ahead of these txns
		}
		rp.ls.PendingDigest = false
		if r.Zxid > d.Zxid {
			return fmt.Sprintf("%s offset %d: %s recorded a digest for zxid 0x%x, which the log does not hold", file, off, rp.snap, d.Zxid)
		}
		if t.Digest() != d.Digest {
			return fmt.Sprintf("%s offset %d: %s recorded digest %d for zxid 0x%x, the tree replayed to it hashes to %d",
				file, off, rp.snap, int64(d.Digest), d.Zxid, int64(t.Digest()))
		}
		rp.compared++
	}
	if txn.DigestVersion == tree.DigestVersion {
		if t.Digest() != txn.Digest {
			return fmt.Sprintf("%s offset %d: txn 0x%x carries TxnDigest %d, the tree after it hashes to %d",
				file, off, r.Zxid, int64(txn.Digest), int64(t.Digest()))
		}
		rp.compared++
	}
	return ""
}

// applySafely applies txn; a txn the tree cannot apply is reported, not a
// crash of the tool.
func applySafely(t *tree.Tree, txn *tree.Txn) (msg string) {
	defer func() {
		if p := recover(); p != nil {
			msg = fmt.Sprintf("cannot be applied: %v", p)
		}
	}()
	t.Apply(txn)
	return ""
}

// summary says what the replay did, and whether that is a problem.
func (rp *replay) summary() (string, bool) {
	if rp.stopped != "" {
		// Stopped at a problem (counted already) or where it should.
		return fmt.Sprintf("%d txns applied, %d digests compared, %s", rp.applied, rp.compared, rp.stopped), false
	}
	if rp.ls.PendingDigest {
		return fmt.Sprintf("%d txns applied; the log ends before zxid 0x%x, whose digest %s recorded: txns are missing",
			rp.applied, rp.ls.Digest.Zxid, rp.snap), true
	}
	// A node a fuzzy snapshot loaded without its ACL list must have it
	// from the log by its end, or a server refuses to serve the tree.
	if err := rp.ls.Tree.CheckACLs(); err != nil && !rp.secondary {
		return fmt.Sprintf("%d txns applied; %v: a server refuses to serve this", rp.applied, err), true
	}
	if rp.applied == 0 {
		return "no txns after it in the log", false
	}
	return fmt.Sprintf("%d txns applied 0x%x..0x%x, %d digests compared, all equal", rp.applied, rp.zxid+1, rp.last, rp.compared), false
}
