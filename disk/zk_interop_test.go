package disk

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/proto"
)

// The fixtures under testdata/zk38 were made by scripts/zk-datadirs.sh with
// Debian's Apache ZooKeeper 3.8 (SIGKILLed with sessions open, logs
// preallocated 16 KiB at a time); beside each log file is ZooKeeper's own
// TxnLogToolkit dump of it.

// copyTree copies a fixture directory so a test may change it.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	require.NoError(t, os.CopyFS(dst, os.DirFS(src)))
	return dst
}

// toolkitLine is what TxnLogToolkit prints of one txn that we compare.
type toolkitLine struct {
	session, zxid int64
	cxid          int32
	op            string
}

var toolkitRe = regexp.MustCompile(`session 0x([0-9a-f]+) cxid 0x([0-9a-f]+) zxid 0x([0-9a-f]+) (\w+)`)

// parseToolkit reads a TxnLogToolkit dump: its txn lines and the count in
// its "EOF reached after N txns." line.
func parseToolkit(t *testing.T, out string) ([]toolkitLine, int) {
	t.Helper()
	var lines []toolkitLine
	count := -1
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		require.NotContains(t, l, "CRC ERROR")
		if m := toolkitRe.FindStringSubmatch(l); m != nil {
			s, err := strconv.ParseUint(m[1], 16, 64)
			require.NoError(t, err)
			c, err := strconv.ParseUint(m[2], 16, 64)
			require.NoError(t, err)
			z, err := strconv.ParseUint(m[3], 16, 64)
			require.NoError(t, err)
			lines = append(lines, toolkitLine{session: int64(s), cxid: int32(c), zxid: int64(z), op: m[4]})
		}
		if n, ok := strings.CutPrefix(l, "EOF reached after "); ok {
			v, err := strconv.Atoi(strings.TrimSuffix(n, " txns."))
			require.NoError(t, err)
			count = v
		}
	}
	return lines, count
}

// toolkitOp is ZooKeeper's Request.op2String of a txn type.
func toolkitOp(op proto.OpCode) string {
	if op == proto.OpCreateTTL {
		return "createTtl"
	}
	return op.String()
}

// zkLogDirs are the log directories (holding version-2) of the fixtures.
var zkLogDirs = []string{"testdata/zk38/standalone", "testdata/zk38/datalogdir/logs",
	"testdata/zk38/ensemble/n1", "testdata/zk38/ensemble/n2", "testdata/zk38/ensemble/n3"}

// TestZooKeeperEpochFiles reads the epoch files of ZooKeeper's ensemble:
// ASCII decimal without a newline, in version-2; myid beside it.
func TestZooKeeperEpochFiles(t *testing.T) {
	for _, n := range []string{"n1", "n2", "n3"} {
		dir := filepath.Join("testdata/zk38/ensemble", n)
		for _, name := range []string{AcceptedEpochFile, CurrentEpochFile} {
			b, err := os.ReadFile(EpochFilePath(dir, name))
			require.NoError(t, err)
			require.Equal(t, "2", string(b), "as ZooKeeper writes it")
			v, ok, err := ReadEpochFile(EpochFilePath(dir, name))
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, int64(2), v)
		}
		// We write them byte for byte as ZooKeeper does.
		tmp := filepath.Join(t.TempDir(), CurrentEpochFile)
		require.NoError(t, WriteEpochFile(tmp, 2))
		b, err := os.ReadFile(tmp)
		require.NoError(t, err)
		require.Equal(t, "2", string(b))
	}
}

// TestReadZooKeeperLogs reads every log ZooKeeper 3.8 wrote into the txns
// its own TxnLogToolkit shows, checks that they follow each other without
// a gap, that each re-encodes to ZooKeeper's bytes (but a failed multi,
// which ZooKeeper writes with the records of the ops before the failing
// one and we without), and that applying them builds the tree ZooKeeper
// served.
func TestReadZooKeeperLogs(t *testing.T) {
	for _, fixture := range zkLogDirs {
		t.Run(fixture, func(t *testing.T) {
			dir := copyTree(t, fixture)
			var w warnings
			l, err := OpenLog(dir, LogOptions{NoSync: true, Logger: w.logger()})
			require.NoError(t, err)
			defer l.Close()
			require.Empty(t, w.msgs, "a ZooKeeper log after SIGKILL opens without warnings")
			got := readAll(t, l, 0)

			var want []toolkitLine
			files, err := filepath.Glob(filepath.Join(fixture, "version-2", "log.*.toolkit.txt"))
			require.NoError(t, err)
			require.NotEmpty(t, files)
			slices.SortFunc(files, func(a, b string) int {
				za, _, _ := parseZxidName(strings.TrimSuffix(filepath.Base(a), ".toolkit.txt"), logPrefix)
				zb, _, _ := parseZxidName(strings.TrimSuffix(filepath.Base(b), ".toolkit.txt"), logPrefix)
				return int(za - zb)
			})
			for _, f := range files {
				out, err := os.ReadFile(f)
				require.NoError(t, err)
				lines, n := parseToolkit(t, string(out))
				require.Equal(t, n, len(lines), f)
				want = append(want, lines...)
			}
			require.Len(t, got, len(want))

			tr := tree.New(tree.Options{ExtendedTypes: true})
			types := map[proto.OpCode]int{}
			for i, r := range got {
				txn, err := tree.UnmarshalTxn(r.Data)
				require.NoError(t, err, "zxid %#x", r.Zxid)
				require.Equal(t, want[i], toolkitLine{session: txn.SessionID, cxid: txn.Cxid, zxid: txn.Zxid, op: toolkitOp(txn.Type)})
				if i > 0 {
					require.True(t, Follows(got[i-1].Zxid, r.Zxid), "no gap before %#x", r.Zxid)
				}
				failedMulti := txn.Type == proto.OpMulti && txn.Ops[0].Type == proto.OpError
				if !failedMulti {
					require.Equal(t, r.Data, txn.Marshal(), "zxid %#x (%v) re-encodes byte for byte", txn.Zxid, txn.Type)
				}
				if txn.Type == proto.OpError {
					require.Zero(t, txn.DigestVersion, "ZooKeeper writes no digest for a failed op")
				} else {
					require.Equal(t, int32(tree.DigestVersion), txn.DigestVersion, "zxid %#x", txn.Zxid)
				}
				types[txn.Type]++
				if failedMulti {
					types[-100]++
				}
				tr.Apply(txn)
			}
			for _, op := range []proto.OpCode{proto.OpCreateSession, proto.OpCreate, proto.OpCreateContainer, proto.OpCreateTTL,
				proto.OpSetData, proto.OpSetACL, proto.OpMulti, proto.OpError, proto.OpDelete, proto.OpCloseSession} {
				require.Positive(t, types[op], "the fixture has a %v txn", op)
			}
			require.Positive(t, types[-100], "the fixture has a failed multi")

			get := func(path string) (*proto.GetDataResponse, proto.ErrCode) {
				resp, code := tr.Read(tree.Caller{}, 0, proto.OpGetData, &proto.GetDataRequest{Path: path})
				if code != proto.ErrOK {
					return nil, code
				}
				return resp.(*proto.GetDataResponse), code
			}
			root, code := get("/fx")
			require.Equal(t, proto.ErrOK, code)
			require.Equal(t, "root3", string(root.Data))
			require.Equal(t, int32(2), root.Stat.Version)
			m, code := get("/fx/m")
			require.Equal(t, proto.ErrOK, code)
			require.Equal(t, "m2", string(m.Data), "the failed multi changed nothing")
			_, code = get("/fx/e2")
			require.Equal(t, proto.ErrNoNode, code, "closeSession deleted the ephemeral")
			e, code := get("/fx/e")
			require.Equal(t, proto.ErrOK, code, "the killed session's ephemeral stays")
			require.Equal(t, got[0].Zxid, e.Stat.Czxid-4)
			require.NotZero(t, e.Stat.EphemeralOwner)
			u, code := get("/fx/utf8-ü")
			require.Equal(t, proto.ErrOK, code)
			require.Equal(t, []byte{0, 1, 2, 0xff}, u.Data)
		})
	}
}

// lastSegmentOf returns the path of the newest log file under dir.
func lastSegmentOf(t *testing.T, dir string) string {
	t.Helper()
	ns, err := listNamed(OSFS{}, filepath.Join(dir, versionDir), logPrefix)
	require.NoError(t, err)
	require.NotEmpty(t, ns)
	return filepath.Join(dir, versionDir, ns[len(ns)-1].name)
}

// TestZooKeeperLogDamage damages ZooKeeper's newest log file as a crash
// would (the last record cut short inside the preallocated zeros: torn,
// the log ends before it) and as a crash does not (a flipped payload byte:
// corruption, refused with the file and offset).
func TestZooKeeperLogDamage(t *testing.T) {
	fixture := zkLogDirs[0]
	clean := copyTree(t, fixture)
	l, err := OpenLog(clean, LogOptions{NoSync: true})
	require.NoError(t, err)
	all := readAll(t, l, 0)
	require.NoError(t, l.Close())

	orig, err := os.ReadFile(lastSegmentOf(t, clean))
	require.NoError(t, err)
	offs := offsets(orig)
	last := offs[len(offs)-1]
	end := last + recordOverhead + int64(len(all[len(all)-1].Data))
	for _, cut := range []int64{last + 3, last + 12, last + 40, end - 1} {
		dir := copyTree(t, fixture)
		b := bytes.Clone(orig)
		clear(b[cut:]) // the write stopped at cut; the zeros of preallocation follow
		require.NoError(t, os.WriteFile(lastSegmentOf(t, dir), b, 0o644))
		var w warnings
		l, err := OpenLog(dir, LogOptions{NoSync: true, Logger: w.logger()})
		require.NoError(t, err, "cut at %d", cut)
		requireRecords(t, all[:len(all)-1], readAll(t, l, 0))
		if cut > last+4 {
			// (The checksum's top four bytes are zero: a cut before them
			// leaves nothing but zeros, the same as no write at all.)
			require.NotEmpty(t, w.msgs, "the torn record is logged")
		}
		require.NoError(t, l.Close())
	}

	for _, rec := range []int{1, len(offs) - 1} {
		dir := copyTree(t, fixture)
		b := bytes.Clone(orig)
		b[offs[rec]+recordPrefixSize+TxnHeaderSize+2] ^= 0x08
		path := lastSegmentOf(t, dir)
		require.NoError(t, os.WriteFile(path, b, 0o644))
		_, err := OpenLog(dir, LogOptions{NoSync: true, Logger: quiet()})
		require.ErrorIs(t, err, ErrCorrupt)
		require.Contains(t, err.Error(), path)
		require.Contains(t, err.Error(), fmt.Sprintf("offset %d", offs[rec]))
		if rec == len(offs)-1 {
			require.ErrorIs(t, err, ErrCorruptTail)
		} else {
			require.NotErrorIs(t, err, ErrCorruptTail)
		}
	}
}

// TestZooKeeperLogGapRefused removes a log file from the middle of
// ZooKeeper's log: Recover refuses, naming the file and offset after the
// gap.
func TestZooKeeperLogGapRefused(t *testing.T) {
	dir := copyTree(t, zkLogDirs[0])
	ns, err := listNamed(OSFS{}, filepath.Join(dir, versionDir), logPrefix)
	require.NoError(t, err)
	require.Greater(t, len(ns), 2)
	require.NoError(t, os.Remove(filepath.Join(dir, versionDir, ns[1].name)))
	// Recover would load ZooKeeper's snapshots once they are our format;
	// here there are none of ours, so the log is replayed from its start.
	snaps := t.TempDir()
	l, err := OpenLog(dir, LogOptions{NoSync: true})
	require.NoError(t, err)
	defer l.Close()
	_, err = Recover(snaps, l, func(int64, io.Reader) error { return nil }, func(Record) error { return nil })
	require.ErrorIs(t, err, ErrCorrupt)
	next := filepath.Join(dir, versionDir, ns[2].name)
	require.Contains(t, err.Error(), next)
	require.Contains(t, err.Error(), fmt.Sprintf("offset %d", logHeaderSize))
	require.Contains(t, err.Error(), "missing")
}

// TestEmptySegmentsAfterTheEnd: files holding no complete record after the
// end of the log (a crash while creating each of two files) are removed, so
// the appends that follow can create their files; an empty file before
// the end is kept (TestTornLastRecord covers it).
func TestEmptySegmentsAfterTheEnd(t *testing.T) {
	dir, _ := writeLog(t, LogOptions{NoSync: true}, recs(1, 5))
	v2 := filepath.Join(dir, versionDir)
	require.NoError(t, os.WriteFile(filepath.Join(v2, "log.6"), logHeader(), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(v2, "log.7"), logHeader()[:5], 0o644))
	l, err := OpenLog(dir, LogOptions{NoSync: true, Logger: quiet()})
	require.NoError(t, err)
	require.NoError(t, l.Append(rec(6), rec(7)))
	requireRecords(t, recs(1, 7), readAll(t, l, 0))
	require.NoError(t, l.Close())
	l, err = OpenLog(dir, LogOptions{NoSync: true, Logger: quiet()})
	require.NoError(t, err)
	requireRecords(t, recs(1, 7), readAll(t, l, 0))
	require.NoError(t, l.Close())
}

// TestSparseTailWithData: a preallocated tail is mostly holes, which the
// check that it is all zeros skips; a stray non-zero byte inside it is still
// found (the data after the end marker is damage).
func TestSparseTailWithData(t *testing.T) {
	for _, stray := range []bool{false, true} {
		dir, last := writeLog(t, LogOptions{NoSync: true}, recs(1, 5))
		f, err := os.OpenFile(last, os.O_WRONLY, 0)
		require.NoError(t, err)
		if stray {
			_, err = f.WriteAt([]byte{7}, 3<<20+5)
			require.NoError(t, err)
		}
		_, err = f.WriteAt([]byte{0}, 64<<20-1)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		l, err := OpenLog(dir, LogOptions{NoSync: true, Logger: quiet()})
		if stray {
			require.ErrorIs(t, err, ErrCorrupt)
			continue
		}
		require.NoError(t, err)
		requireRecords(t, recs(1, 5), readAll(t, l, 0))
		require.NoError(t, l.Close())
	}
}
