package load

import (
	"testing"

	"github.com/zabkeeper/zabkeeper/linearizability"
)

// The acked-writes check itself: a final read that misses the last
// acknowledged write is reported, one that shows it or an in-doubt write is
// not.
func TestAckedWritesLostCheck(t *testing.T) {
	const p = "/f/a"
	base := []linearizability.Op{
		{Session: 1, Call: 1, Return: 2, Kind: linearizability.Create, Path: p, Data: []byte("v1"), Name: p},
		{Session: 1, Call: 3, Return: 4, Kind: linearizability.SetData, Path: p, Data: []byte("v2"), Version: -1, StatVersion: 1},
	}
	final := func(data string, code int32) linearizability.Op {
		return linearizability.Op{Session: 2, Call: 10, Return: 11, Kind: linearizability.GetData, Path: p,
			RespData: []byte(data), Err: code, SyncedBefore: true}
	}
	hist := func(extra ...linearizability.Op) linearizability.History {
		return linearizability.History{Ops: append(append([]linearizability.Op(nil), base...), extra...)}
	}
	paths := []string{p}

	if got := AckedWritesLost(hist(final("v2", 0)), paths); len(got) != 0 {
		t.Errorf("last write visible, yet reported: %v", got)
	}
	if got := AckedWritesLost(hist(final("v1", 0)), paths); len(got) != 1 {
		t.Errorf("overwritten value read back, reported %v", got)
	}
	if got := AckedWritesLost(hist(final("", linearizability.ErrNoNode)), paths); len(got) != 1 {
		t.Errorf("node gone without a delete, reported %v", got)
	}
	inDoubt := linearizability.Op{Session: 1, Call: 5, Return: linearizability.Unknown, Kind: linearizability.Delete, Path: p, Version: -1}
	if got := AckedWritesLost(hist(inDoubt, final("", linearizability.ErrNoNode)), paths); len(got) != 0 {
		t.Errorf("an in-doubt delete explains NoNode, yet reported: %v", got)
	}
	failed := linearizability.Op{Session: 1, Call: 5, Return: 6, Kind: linearizability.SetData, Path: p,
		Data: []byte("v3"), Version: 7, Err: linearizability.ErrBadVersion}
	if got := AckedWritesLost(hist(failed, final("v3", 0)), paths); len(got) != 1 {
		t.Errorf("value of a rejected write read back, reported %v", got)
	}
}

// Multis count as writes of each of their sub-operations, and only when the
// whole multi succeeded (or its outcome is unknown).
func TestAckedWritesLostMulti(t *testing.T) {
	const p, q = "/g0/k0", "/g0/k1"
	create := linearizability.Op{Session: 1, Call: 1, Return: 2, Kind: linearizability.Create, Path: p, Data: []byte("v1"), Name: p}
	multi := func(ret int64, subErr int32) linearizability.Op {
		return linearizability.Op{Session: 1, Call: 3, Return: ret, Kind: linearizability.Multi, Ops: []linearizability.Op{
			{Kind: linearizability.Check, Path: q, Version: -1, Err: subErr},
			{Kind: linearizability.SetData, Path: p, Data: []byte("v2"), Version: -1, Err: subErr},
		}}
	}
	final := func(data string) linearizability.Op {
		return linearizability.Op{Session: 2, Call: 10, Return: 11, Kind: linearizability.GetData, Path: p,
			RespData: []byte(data), SyncedBefore: true}
	}
	paths := []string{p}
	hist := func(ops ...linearizability.Op) linearizability.History { return linearizability.History{Ops: ops} }

	if got := AckedWritesLost(hist(create, multi(4, 0), final("v2")), paths); len(got) != 0 {
		t.Errorf("the multi's value read back, yet reported: %v", got)
	}
	if got := AckedWritesLost(hist(create, multi(4, 0), final("v1")), paths); len(got) != 1 {
		t.Errorf("the acknowledged multi's write missing, reported %v", got)
	}
	if got := AckedWritesLost(hist(create, multi(linearizability.Unknown, 0), final("v1")), paths); len(got) != 0 {
		t.Errorf("a multi of unknown outcome need not apply, yet reported: %v", got)
	}
	if got := AckedWritesLost(hist(create, multi(4, linearizability.ErrNoNode), final("v2")), paths); len(got) != 1 {
		t.Errorf("the value of a failed multi read back, reported %v", got)
	}
}

// A lost write's finding is dated by the acknowledgement of the write that
// should have been last.
func TestAckedWritesLostDated(t *testing.T) {
	const p = "/g0/k0"
	ops := []linearizability.Op{
		{Session: 1, Call: 1, Return: 2, Kind: linearizability.Create, Path: p, Data: []byte("v1"), Name: p},
		{Session: 1, Call: 3, Return: 4, Kind: linearizability.SetData, Path: p, Data: []byte("v2"), Version: -1, StatVersion: 1},
		{Session: 2, Call: 10, Return: 11, Kind: linearizability.GetData, Path: p, RespData: []byte("v1"), SyncedBefore: true},
	}
	got := AckedWritesLost(linearizability.History{Ops: ops}, []string{p})
	if len(got) != 1 || got[0].At != 4 {
		t.Fatalf("got %+v, want one lost write dated 4", got)
	}
}
