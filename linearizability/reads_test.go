package linearizability

import (
	"strings"
	"testing"
)

// z sets the reply zxid of an op.
func z(op Op, zxid int64) Op { op.Zxid = zxid; return op }

func requireNoViolations(t *testing.T, h History) {
	t.Helper()
	if v := CheckReads(h); len(v) != 0 {
		t.Fatalf("unexpected violations: %v", v)
	}
}

func requireViolation(t *testing.T, h History, substr string) {
	t.Helper()
	v := CheckReads(h)
	for _, x := range v {
		if strings.Contains(x.Reason, substr) {
			return
		}
	}
	t.Fatalf("want a violation containing %q, got %v", substr, v)
}

func TestReadsStaleButConsistent(t *testing.T) {
	h := hist(
		z(mkCreate(1, 0, 10, "/a", "1", 0, 0, "/a"), 2),
		z(mkSet(1, 20, 30, "/a", "2", -1, 0, 1), 3),
		z(mkGet(2, 40, 50, "/a", 0, "1", 0, false), 2),        // stale, fine
		z(mkGet(2, 60, 70, "/a", 0, "2", 1, false), 3),        // caught up
		z(mkGet(3, 40, 50, "/a", ErrNoNode, "", 0, false), 1), // before the create
	)
	requireNoViolations(t, h)
	requireLinearizable(t, h) // plain reads are not linearizability-checked
}

func TestReadsZxidGoesBack(t *testing.T) {
	requireViolation(t, hist(
		z(mkCreate(1, 0, 10, "/a", "1", 0, 0, "/a"), 2),
		z(mkGet(2, 40, 50, "/a", 0, "1", 0, false), 2),
		z(mkGet(2, 60, 70, "/a", ErrNoNode, "", 0, false), 1),
	), "below the session's previous reply zxid")
}

func TestReadsReadYourWrites(t *testing.T) {
	// The reply zxid of the write was not recorded, but its Stat was.
	set := mkSet(1, 20, 30, "/a", "2", -1, 0, 1)
	set.Mzxid = 3
	requireViolation(t, hist(
		z(mkCreate(1, 0, 10, "/a", "1", 0, 0, "/a"), 2),
		set,
		z(mkGet(1, 40, 50, "/a", 0, "1", 0, false), 2),
	), "does not see its own session's earlier write")
}

func TestReadsStateMismatch(t *testing.T) {
	base := []Op{
		z(mkCreate(1, 0, 10, "/a", "1", 0, 0, "/a"), 2),
		z(mkSet(1, 20, 30, "/a", "2", -1, 0, 1), 3),
	}
	for _, bad := range []Op{
		z(mkGet(2, 40, 50, "/a", 0, "2", 0, false), 2),        // data from zxid 3 at zxid 2
		z(mkGet(2, 40, 50, "/a", 0, "1", 1, false), 2),        // wrong version
		z(mkGet(2, 40, 50, "/a", ErrNoNode, "", 0, false), 3), // missing at 3
		z(mkGet(2, 40, 50, "/a", 0, "garbage", 1, false), 5),  // never written
		z(mkGet(2, 40, 50, "/a", 0, "2", 1, true), 1),         // exists before its create
		z(Op{Session: 2, Call: 40, Return: 50, Kind: Exists, Path: "/a"}, 3),
		z(Op{Session: 2, Call: 40, Return: 50, Kind: GetChildren, Path: "/", Children: []string{"zookeeper"}}, 2),
		z(Op{Session: 2, Call: 40, Return: 50, Kind: GetData, Path: "/a", RespData: []byte("2"), StatVersion: 1, Mzxid: 2}, 3),
	} {
		requireViolation(t, hist(append(append([]Op{}, base...), bad)...), "at that zxid")
	}
	requireNoViolations(t, hist(append(append([]Op{}, base...),
		z(Op{Session: 2, Call: 40, Return: 50, Kind: Exists, Path: "/a", Exists: true, StatVersion: 1, Mzxid: 3, Czxid: 2}, 3),
		z(Op{Session: 3, Call: 40, Return: 50, Kind: GetChildren, Path: "/", Children: []string{"a", "zookeeper"}}, 2),
	)...))
}

func TestReadsEphemeralAfterClose(t *testing.T) {
	base := []Op{
		z(mkCreate(1, 0, 10, "/q", "", 0, 0, "/q"), 2),
		z(mkCreate(1, 10, 20, "/q/e-", "", ModeEphemeralSequential, 0, "/q/e-0000000000"), 3),
		z(mkClose(1, 30, 40), 4),
	}
	requireViolation(t, hist(append(append([]Op{}, base...),
		z(Op{Session: 2, Call: 50, Return: 60, Kind: GetChildren, Path: "/q", Children: []string{"e-0000000000"}}, 4))...), "at that zxid")
	requireNoViolations(t, hist(append(append([]Op{}, base...),
		z(Op{Session: 2, Call: 50, Return: 60, Kind: GetChildren, Path: "/q", Children: []string{"e-0000000000"}}, 3),
		z(Op{Session: 3, Call: 50, Return: 60, Kind: GetChildren, Path: "/q"}, 4))...))
}

func TestReadsMultiAppliesAtomically(t *testing.T) {
	m := z(multi(1, 0, 10,
		Op{Kind: Create, Path: "/x", Data: []byte("a")},
		Op{Kind: Create, Path: "/y", Data: []byte("b")},
	), 5)
	requireNoViolations(t, hist(m,
		z(mkGet(2, 20, 30, "/x", 0, "a", 0, false), 5),
		z(mkGet(2, 40, 50, "/y", 0, "b", 0, false), 5)))
	requireViolation(t, hist(m,
		z(mkGet(2, 20, 30, "/x", 0, "a", 0, false), 5),
		z(mkGet(2, 40, 50, "/y", ErrNoNode, "", 0, false), 5)), "at that zxid")
	// A failed multi changes nothing.
	failed := z(multi(1, 0, 10,
		Op{Kind: Create, Path: "/x"},
		Op{Kind: Delete, Path: "/nope", Err: ErrNoNode},
	), 5)
	requireViolation(t, hist(failed, z(mkGet(2, 20, 30, "/x", 0, "", 0, false), 5)), "at that zxid")
}

func TestReadsUndecidableAreSkipped(t *testing.T) {
	// An unknown-outcome write issued before the read returned: skip.
	requireNoViolations(t, hist(
		mkCreate(1, 0, Unknown, "/a", "1", 0, 0, ""),
		z(mkGet(2, 40, 50, "/a", 0, "1", 0, false), 7),
		z(mkGet(3, 40, 50, "/a", ErrNoNode, "", 0, false), 7),
	))
	// ... but not one issued after it returned.
	requireViolation(t, hist(
		mkCreate(1, 60, Unknown, "/a", "1", 0, 0, ""),
		z(mkGet(2, 40, 50, "/a", 0, "1", 0, false), 7),
	), "at that zxid")
	// A successful write without any zxid: skip.
	requireNoViolations(t, hist(
		mkCreate(1, 0, 10, "/a", "1", 0, 0, "/a"),
		z(mkGet(2, 40, 50, "/a", ErrNoNode, "", 0, false), 7),
	))
	// Evidence that reply zxids are not the writes' own zxids (the set's
	// Stat says 3, its reply says 4): reply zxids are distrusted, so the
	// delete's zxid is unknown and the read of /b is undecidable.
	set := z(mkSet(1, 20, 30, "/a", "2", -1, 0, 1), 4)
	set.Mzxid = 3
	requireNoViolations(t, hist(
		z(mkCreate(1, 0, 10, "/a", "1", 0, 0, "/a"), 2),
		set,
		z(mkDelete(3, 0, 10, "/b", -1, 0), 4),
		z(mkGet(2, 40, 50, "/b", 0, "", 0, false), 4),
	))
	// Two writes claiming the same zxid are both inexact.
	requireNoViolations(t, hist(
		z(mkCreate(1, 0, 10, "/a", "1", 0, 0, "/a"), 2),
		z(mkSet(3, 0, 10, "/a", "2", -1, 0, 1), 2),
		z(mkGet(2, 40, 50, "/a", 0, "1", 0, false), 2),
	))
	// Stat zxids stay exact under distrust.
	create := z(mkCreate(1, 0, 10, "/a", "1", 0, 0, "/a"), 2)
	create.Czxid = 2
	requireViolation(t, hist(
		create,
		set,
		z(mkGet(2, 40, 50, "/a", 0, "1", 0, false), 4),
	), "at that zxid")
}

func TestReadsReplyBelowOwnStat(t *testing.T) {
	set := z(mkSet(1, 20, 30, "/a", "2", -1, 0, 1), 2)
	set.Mzxid = 3
	requireViolation(t, hist(z(mkCreate(1, 0, 10, "/a", "1", 0, 0, "/a"), 2), set), "below the write's own Stat zxid")
}
