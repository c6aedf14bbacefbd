package main

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/zabkeeper/zabkeeper/disk"
)

const datadirUsage = `Usage: zabkeeper datadir verify [--data-log-dir DIR] DATADIR

Checks the transaction log of a data directory (zabkeeper's or Apache
ZooKeeper's: the same files) without starting a server and without
changing anything: every record's framing and Adler32 checksum, each
file's header and first zxid, zxids that follow each other without a gap
within and across files (a gap is allowed where a snapshot covers it, as
after a snapshot sync), and how each file ends (end of file, zero fill, a
torn record a crash left, or a corrupt record). It lists the snapshots;
their contents are not checked here. Prints one line per file and exits 1
if anything would stop a server from starting or lose txns.

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
	for _, s := range snaps {
		fmt.Fprintf(out, "%s: snapshot of zxid 0x%x\n", s.Path, s.Zxid)
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
	problems := 0
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
	return problems, nil
}
