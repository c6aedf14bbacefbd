package linearizability

import (
	"strings"
	"testing"
)

func TestSequentialHistoryIsLinearizable(t *testing.T) {
	h := hist(
		mkCreate(1, 0, 10, "/a", "x", ModePersistent, 0, "/a"),
		mkSet(1, 20, 30, "/a", "y", 0, 0, 1),
		mkSet(1, 40, 50, "/a", "z", 0, ErrBadVersion, 0),
		mkSync(2, 60, 65, "/a"),
		mkGet(2, 66, 70, "/a", 0, "y", 1, true),
		mkCreate(1, 80, 90, "/a/b", "", ModePersistent, 0, "/a/b"),
		mkDelete(1, 100, 110, "/a", -1, ErrNotEmpty),
		mkDelete(1, 120, 130, "/a/b", 3, ErrBadVersion),
		mkDelete(1, 140, 150, "/a/b", 0, 0),
		mkDelete(1, 160, 170, "/a", 1, 0),
		mkCreate(1, 180, 190, "/nope/x", "", ModePersistent, ErrNoNode, ""),
		mkSet(1, 200, 210, "/a", "", -1, ErrNoNode, 0),
	)
	res := requireLinearizable(t, h)
	if res.OpsChecked != len(h.Ops) || res.Excluded != 0 {
		t.Fatalf("unexpected counts: %v", res)
	}
}

func TestConcurrentCreatesOneWins(t *testing.T) {
	requireLinearizable(t, hist(
		mkCreate(1, 0, 100, "/lock", "", ModeEphemeral, 0, "/lock"),
		mkCreate(2, 10, 90, "/lock", "", ModeEphemeral, ErrNodeExists, ""),
	))
}

func TestTwoCreatesOfSamePathBothSucceed(t *testing.T) {
	requireNotLinearizable(t, hist(
		mkCreate(1, 0, 100, "/lock", "", ModeEphemeral, 0, "/lock"),
		mkCreate(2, 10, 90, "/lock", "", ModeEphemeral, 0, "/lock"),
	))
}

func TestLostAcknowledgedCreate(t *testing.T) {
	// The create was acknowledged at 10, yet a later create of the same path
	// by another session succeeds: the first create was lost.
	requireNotLinearizable(t, hist(
		mkCreate(1, 0, 10, "/a", "x", ModePersistent, 0, "/a"),
		mkCreate(2, 20, 30, "/a", "y", ModePersistent, 0, "/a"),
	))
	// Same loss seen by a synced read.
	requireNotLinearizable(t, hist(
		mkCreate(1, 0, 10, "/a", "x", ModePersistent, 0, "/a"),
		mkSync(2, 20, 25, "/a"),
		mkGet(2, 26, 30, "/a", ErrNoNode, "", 0, true),
	))
}

func TestStaleReadAfterSync(t *testing.T) {
	base := []Op{
		mkCreate(1, 0, 10, "/a", "1", ModePersistent, 0, "/a"),
		mkSet(1, 20, 30, "/a", "2", -1, 0, 1),
		mkSync(2, 40, 45, "/a"),
	}
	stale := mkGet(2, 46, 50, "/a", 0, "1", 0, true)
	requireNotLinearizable(t, hist(append(append([]Op{}, base...), stale)...))

	// The same read without the sync is allowed to be stale: it is left out.
	stale.SyncedBefore = false
	res := requireLinearizable(t, hist(append(append([]Op{}, base...), stale)...))
	if res.Excluded != 1 {
		t.Fatalf("plain read not excluded: %v", res)
	}

	// A sync concurrent with the write may or may not order after it.
	requireLinearizable(t, hist(
		mkCreate(1, 0, 10, "/a", "1", ModePersistent, 0, "/a"),
		mkSet(1, 20, 60, "/a", "2", -1, 0, 1),
		mkSync(2, 30, 35, "/a"),
		mkGet(2, 36, 40, "/a", 0, "1", 0, true),
	))
}

func TestSyncedReadWithoutSyncIsWarnedAndExcluded(t *testing.T) {
	res := requireLinearizable(t, hist(
		mkCreate(1, 0, 10, "/a", "1", ModePersistent, 0, "/a"),
		mkGet(2, 46, 50, "/a", 0, "stale", 0, true),
	))
	if res.Excluded != 1 || len(res.Warnings) != 1 {
		t.Fatalf("want one excluded op and a warning: %v %v", res, res.Warnings)
	}
}

func TestSequentialNames(t *testing.T) {
	good := []Op{
		mkCreate(1, 0, 10, "/q", "", ModePersistent, 0, "/q"),
		mkCreate(1, 20, 30, "/q/n-", "", ModeSequential, 0, "/q/n-0000000000"),
		mkCreate(1, 40, 50, "/q/plain", "", ModePersistent, 0, "/q/plain"),              // bumps the counter
		mkCreate(1, 60, 70, "/q/n-", "", ModeEphemeralSequential, 0, "/q/n-0000000002"), // after 0 and plain
		mkDelete(1, 80, 90, "/q/n-0000000000", -1, 0),                                   // deletes never lower it
		mkCreate(2, 100, 110, "/q/", "", ModeSequential, 0, "/q/0000000003"),
		mkCreate(2, 120, 130, "/q/plain", "", ModeSequential, 0, "/q/plain0000000004"),
	}
	requireLinearizable(t, hist(good...))

	wrong := append([]Op{}, good...)
	wrong[3].Name = "/q/n-0000000001" // ignores the non-sequential create
	requireNotLinearizable(t, hist(wrong...))

	wrong = append([]Op{}, good...)
	wrong[5].Name = "/q/0000000002" // reuses a number after a delete
	requireNotLinearizable(t, hist(wrong...))

	// Concurrent sequential creates: names tell the order.
	requireLinearizable(t, hist(
		mkCreate(1, 0, 10, "/q", "", ModePersistent, 0, "/q"),
		mkCreate(1, 20, 100, "/q/n-", "", ModeSequential, 0, "/q/n-0000000001"),
		mkCreate(2, 30, 90, "/q/n-", "", ModeSequential, 0, "/q/n-0000000000"),
	))
	requireNotLinearizable(t, hist(
		mkCreate(1, 0, 10, "/q", "", ModePersistent, 0, "/q"),
		mkCreate(1, 20, 100, "/q/n-", "", ModeSequential, 0, "/q/n-0000000000"),
		mkCreate(2, 30, 90, "/q/n-", "", ModeSequential, 0, "/q/n-0000000000"),
	))
}

func TestEphemerals(t *testing.T) {
	// No children under ephemerals.
	requireLinearizable(t, hist(
		mkCreate(1, 0, 10, "/e", "", ModeEphemeral, 0, "/e"),
		mkCreate(1, 20, 30, "/e/c", "", ModePersistent, ErrNoChildrenForEphemeral, ""),
	))
	requireNotLinearizable(t, hist(
		mkCreate(1, 0, 10, "/e", "", ModeEphemeral, 0, "/e"),
		mkCreate(1, 20, 30, "/e/c", "", ModePersistent, 0, "/e/c"),
	))

	// The ephemeral goes with its session; a persistent node stays.
	closed := []Op{
		mkCreate(1, 0, 10, "/e", "", ModeEphemeral, 0, "/e"),
		mkCreate(1, 12, 18, "/p", "", ModePersistent, 0, "/p"),
		mkClose(1, 20, 30),
	}
	requireLinearizable(t, hist(append(append([]Op{}, closed...),
		mkCreate(2, 40, 50, "/e", "", ModePersistent, 0, "/e"),
		mkCreate(2, 60, 70, "/p", "", ModePersistent, ErrNodeExists, ""))...))

	// Planted: the ephemeral survives its session's close.
	requireNotLinearizable(t, hist(append(append([]Op{}, closed...),
		mkCreate(2, 40, 50, "/e", "", ModePersistent, ErrNodeExists, ""))...))
	requireNotLinearizable(t, hist(append(append([]Op{}, closed...),
		mkSync(2, 40, 45, "/"),
		Op{Session: 2, Call: 46, Return: 50, Kind: Exists, Path: "/e", Exists: true, SyncedBefore: true})...))
	requireNotLinearizable(t, hist(append(append([]Op{}, closed...),
		mkSync(2, 40, 45, "/"),
		Op{Session: 2, Call: 46, Return: 50, Kind: GetChildren, Path: "/", Children: []string{"zookeeper", "p", "e"}, SyncedBefore: true})...))
	requireLinearizable(t, hist(append(append([]Op{}, closed...),
		mkSync(2, 40, 45, "/"),
		Op{Session: 2, Call: 46, Return: 50, Kind: GetChildren, Path: "/", Children: []string{"p", "zookeeper"}, SyncedBefore: true})...))

	// A close concurrent with the read may or may not have happened yet.
	requireLinearizable(t, hist(
		mkCreate(1, 0, 10, "/e", "", ModeEphemeral, 0, "/e"),
		mkClose(1, 20, 100),
		mkSync(2, 30, 35, "/e"),
		Op{Session: 2, Call: 36, Return: 40, Kind: Exists, Path: "/e", Exists: true, SyncedBefore: true},
	))

	// An expiry whose commit is not confirmed may be linearized anywhere
	// after the session's last reply, or never.
	var h History
	h.Add(mkCreate(1, 0, 10, "/e", "", ModeEphemeral, 0, "/e"))
	h.AddExpiry(1, 200, Unknown)
	if c := h.Ops[1]; c.Kind != CloseSession || c.Call != 10 || c.Return != Unknown {
		t.Fatalf("AddExpiry recorded %v", c.String())
	}
	h.Add(mkCreate(2, 50, 60, "/e", "", ModePersistent, ErrNodeExists, ""))
	h.Add(mkCreate(3, 70, 80, "/e", "", ModePersistent, 0, "/e"))
	requireLinearizable(t, h)

	// Writes of a session are never applied after its close.
	requireNotLinearizable(t, hist(
		mkClose(1, 0, 10),
		mkCreate(1, 20, 30, "/late", "", ModeEphemeral, 0, "/late"),
	))
	requireLinearizable(t, hist(
		mkClose(1, 0, 10),
		mkCreate(1, 20, 30, "/late", "", ModeEphemeral, ErrSessionExpired, ""),
	))
}

func multi(s, call, ret int64, ops ...Op) Op {
	return Op{Session: s, Call: call, Return: ret, Kind: Multi, Ops: ops}
}

func TestMulti(t *testing.T) {
	sub := func(kind OpKind, path string, version, err int32, name string) Op {
		return Op{Kind: kind, Path: path, Version: version, Err: err, Name: name}
	}
	ok := multi(1, 0, 10,
		sub(Create, "/m", 0, 0, "/m"),
		sub(Create, "/m/a", 0, 0, "/m/a"), // sees the pending /m
		sub(Check, "/m", 0, 0, ""),
		Op{Kind: SetData, Path: "/m/a", Version: 0, Data: []byte("d"), StatVersion: 1},
	)
	after := []Op{mkSync(2, 20, 25, "/m/a"), mkGet(2, 26, 30, "/m/a", 0, "d", 1, true)}
	requireLinearizable(t, hist(append([]Op{ok}, after...)...))

	failed := multi(1, 0, 10,
		sub(Create, "/x", 0, 0, ""),
		sub(SetData, "/missing", -1, ErrNoNode, ""),
		sub(Delete, "/x", -1, ErrRuntimeInconsistency, ""),
	)
	requireLinearizable(t, hist(failed,
		mkSync(2, 20, 25, "/x"), mkGet(2, 26, 30, "/x", ErrNoNode, "", 0, true),
		mkCreate(2, 40, 50, "/x", "", ModePersistent, 0, "/x")))

	// Planted: the multi was partially applied (its create is visible).
	requireNotLinearizable(t, hist(failed,
		mkSync(2, 20, 25, "/x"), mkGet(2, 26, 30, "/x", 0, "", 0, true)))
	requireNotLinearizable(t, hist(failed,
		mkCreate(2, 40, 50, "/x", "", ModePersistent, ErrNodeExists, "")))

	// Planted: wrong per-op codes.
	bad := multi(1, 0, 10,
		sub(Create, "/x", 0, 0, ""),
		sub(SetData, "/missing", -1, ErrNoNode, ""),
		sub(Delete, "/x", -1, 0, ""), // must be RuntimeInconsistency
	)
	requireNotLinearizable(t, hist(bad))
	bad = multi(1, 0, 10,
		sub(Create, "/x", 0, ErrRuntimeInconsistency, ""), // earlier ops report 0
		sub(SetData, "/missing", -1, ErrNoNode, ""),
	)
	requireNotLinearizable(t, hist(bad))
	bad = multi(1, 0, 10,
		sub(Create, "/x", 0, 0, ""),
		sub(SetData, "/x", 5, ErrNoNode, ""), // it is BadVersion against the pending /x
	)
	requireNotLinearizable(t, hist(bad))

	// A sub-op rejected for a reason the model does not know (NoAuth).
	requireLinearizable(t, hist(multi(1, 0, 10,
		sub(Create, "/x", 0, 0, ""),
		sub(Create, "/y", 0, -102, ""),
		sub(Create, "/z", 0, ErrRuntimeInconsistency, ""),
	), mkCreate(2, 20, 30, "/x", "", ModePersistent, 0, "/x")))
	requireNotLinearizable(t, hist(multi(1, 0, 10,
		sub(Create, "/x/y", 0, 0, ""), // cannot have succeeded: no /x
		sub(Create, "/y", 0, -102, ""),
	)))
}

func TestUnknownOutcome(t *testing.T) {
	lost := mkCreate(1, 0, Unknown, "/a", "x", ModePersistent, 0, "")
	timedOut := mkCreate(1, 0, 5, "/a", "x", ModePersistent, ErrConnectionLoss, "")
	read := func(call int64, present bool) []Op {
		err := int32(ErrNoNode)
		if present {
			err = 0
		}
		return []Op{mkSync(2, call, call+5, "/a"), mkGet(2, call+6, call+10, "/a", err, "x", 0, true)}
	}
	for _, pending := range []Op{lost, timedOut} {
		requireLinearizable(t, hist(append([]Op{pending}, read(100, true)...)...))
		requireLinearizable(t, hist(append([]Op{pending}, read(100, false)...)...))
		// It cannot appear and then vanish.
		requireNotLinearizable(t, hist(append(append([]Op{pending}, read(100, true)...), read(200, false)...)...))
		// Nor take effect before it was issued.
		p := pending
		p.Call = 150
		if p.Return != Unknown {
			p.Return = 155
		}
		requireNotLinearizable(t, hist(append([]Op{p}, read(100, true)...)...))
	}
	// A lost sequential create still consumes a number if it happened.
	requireLinearizable(t, hist(
		mkCreate(1, 0, 10, "/q", "", ModePersistent, 0, "/q"),
		mkCreate(1, 20, Unknown, "/q/n-", "", ModeSequential, 0, ""),
		mkCreate(2, 100, 110, "/q/n-", "", ModeSequential, 0, "/q/n-0000000001"),
	))
}

func TestRejectedRepliesHaveNoEffect(t *testing.T) {
	requireLinearizable(t, hist(
		mkCreate(1, 0, 10, "/a", "", ModePersistent, -102, ""), // NoAuth
		mkCreate(2, 20, 30, "/a", "", ModePersistent, 0, "/a"),
		mkCreate(3, 40, 50, "/a", "", ModePersistent, ErrSessionExpired, ""),
	))
}

func TestSpecialPathsAndValidation(t *testing.T) {
	requireLinearizable(t, hist(
		mkCreate(1, 0, 10, "/zookeeper", "", ModePersistent, ErrBadArguments, ""),
		mkDelete(1, 20, 30, "/", -1, ErrBadArguments),
		mkCreate(1, 40, 50, "/a//b", "", ModePersistent, ErrNoNode, ""),
		mkCreate(1, 60, 70, "/a/", "", ModePersistent, ErrNoNode, ""), // parent check comes first
		mkCreate(1, 72, 78, "/a", "", ModePersistent, 0, "/a"),
		mkCreate(1, 79, 80, "/a/", "", ModePersistent, ErrBadArguments, ""),
		mkCreate(1, 81, 82, "/a/", "", ModeSequential, 0, "/a/0000000000"),
		mkSync(1, 83, 85, "/"),
		Op{Session: 1, Call: 86, Return: 90, Kind: GetChildren, Path: "/", Children: []string{"zookeeper", "a"}, SyncedBefore: true},
	))
	for _, bad := range []Op{
		mkCreate(1, 0, 10, "/c", "", 4, 0, "/c"),
		{Session: 1, Call: 0, Return: 10, Kind: Check, Path: "/c"},
		mkCreate(1, 10, 5, "/c", "", 0, 0, "/c"),
		{Session: 1, Kind: OpKind(99)},
		multi(1, 0, 10, mkGet(1, 0, 0, "/x", 0, "", 0, false)),
	} {
		if _, err := CheckLinearizable(hist(bad), 0); err == nil {
			t.Errorf("expected an error for %v", bad.String())
		}
	}
}

func TestResultString(t *testing.T) {
	res := requireNotLinearizable(t, hist(
		mkCreate(1, 0, 10, "/a", "", 0, 0, "/a"),
		mkCreate(2, 20, 30, "/a", "", 0, 0, "/a"),
	))
	if !strings.Contains(res.String(), "NOT linearizable") {
		t.Fatalf("bad summary %q", res.String())
	}
}
