package linearizability

import (
	"sort"
	"testing"

	"github.com/anishathalye/porcupine"
)

// partitionPaths returns, per partition, the sorted set of op paths.
func partitionPaths(t *testing.T, h History) [][]string {
	t.Helper()
	p, err := prepare(&h)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for _, part := range partitionOperations(p.ops) {
		set := map[string]bool{}
		for _, op := range part {
			e := op.Input.(*entry)
			set[e.op.Kind.String()+" "+e.op.Path] = true
		}
		var paths []string
		for s := range set {
			paths = append(paths, s)
		}
		sort.Strings(paths)
		out = append(out, paths)
	}
	return out
}

func TestPartitionIndependentPaths(t *testing.T) {
	h := hist(
		mkCreate(1, 0, 10, "/a", "", 0, 0, "/a"),
		mkCreate(2, 0, 10, "/b", "", 0, 0, "/b"),
		mkSet(1, 20, 30, "/a", "x", -1, 0, 1),
		mkCreate(3, 0, 10, "/c", "", ModeEphemeral, 0, "/c"),
		mkDelete(2, 20, 30, "/b", -1, 0),
		mkSync(3, 20, 25, "/c"),
		mkGet(3, 26, 30, "/c", 0, "", 0, true),
		mkGet(3, 40, 50, "/a", 0, "x", 1, false), // plain read: excluded
	)
	res := requireLinearizable(t, h)
	if res.Partitions != 3 {
		t.Fatalf("want 3 partitions, got %d: %v", res.Partitions, partitionPaths(t, h))
	}
	if res.Excluded != 1 || res.OpsChecked != 7 {
		t.Fatalf("counts: %v", res)
	}
}

func TestPartitionMergesStructuralParents(t *testing.T) {
	// Listing "/" observes every top-level create: one partition.
	h := hist(
		mkCreate(1, 0, 10, "/a", "", 0, 0, "/a"),
		mkCreate(2, 0, 10, "/b", "", 0, 0, "/b"),
		mkSync(3, 20, 25, "/"),
		Op{Session: 3, Call: 26, Return: 30, Kind: GetChildren, Path: "/", Children: []string{"a", "b", "zookeeper"}, SyncedBefore: true},
	)
	if res := requireLinearizable(t, h); res.Partitions != 1 {
		t.Fatalf("want 1 partition, got %v", partitionPaths(t, h))
	}

	// Children of a created parent join it; an unrelated path stays apart.
	h = hist(
		mkCreate(1, 0, 10, "/p", "", 0, 0, "/p"),
		mkCreate(1, 20, 30, "/p/x", "", 0, 0, "/p/x"),
		mkSet(2, 40, 50, "/p/x", "d", -1, 0, 1),
		mkCreate(3, 0, 10, "/other", "", 0, 0, "/other"),
	)
	if res := requireLinearizable(t, h); res.Partitions != 2 {
		t.Fatalf("want 2 partitions, got %v", partitionPaths(t, h))
	}

	// Sequential creates join their parent and the returned names; an
	// unknown-outcome sequential create joins every child of the parent.
	h = hist(
		mkCreate(1, 0, 10, "/q", "", 0, 0, "/q"),
		mkCreate(1, 20, 30, "/q/n-", "", ModeSequential, 0, "/q/n-0000000000"),
		mkSet(2, 40, 50, "/q/n-0000000000", "d", -1, 0, 1),
		mkSet(2, 60, 70, "/q/n-0000000001", "d", -1, ErrNoNode, 0),
		mkCreate(3, 0, 10, "/r", "", 0, 0, "/r"),
	)
	if res := requireLinearizable(t, h); res.Partitions != 3 {
		t.Fatalf("want 3 partitions, got %v", partitionPaths(t, h))
	}
	h.Add(mkCreate(1, 80, Unknown, "/q/n-", "", ModeSequential, 0, ""))
	if res := requireLinearizable(t, h); res.Partitions != 2 {
		t.Fatalf("want 2 partitions, got %v", partitionPaths(t, h))
	}
}

func TestPartitionCloseSessionJoinsItsEphemerals(t *testing.T) {
	h := hist(
		mkCreate(1, 0, 10, "/e1", "", ModeEphemeral, 0, "/e1"),
		mkCreate(1, 20, 30, "/e2", "", ModeEphemeral, 0, "/e2"),
		mkCreate(1, 40, 50, "/p", "", ModePersistent, 0, "/p"), // before the close: may stay apart
		mkClose(1, 60, 70),
		mkCreate(2, 80, 90, "/e1", "", 0, 0, "/e1"),
		mkCreate(2, 80, 90, "/e2", "", 0, 0, "/e2"),
	)
	if res := requireLinearizable(t, h); res.Partitions != 2 {
		t.Fatalf("want 2 partitions, got %v", partitionPaths(t, h))
	}
	// The planted survival is still caught across the former partitions.
	h.Ops[5].Err, h.Ops[5].Name = ErrNodeExists, ""
	requireNotLinearizable(t, h)
}

func TestPartitionFunctionKeepsEveryOp(t *testing.T) {
	h := hist(
		mkCreate(1, 0, 10, "/a", "", 0, 0, "/a"),
		mkClose(2, 0, 10), // nothing to close: its own partition
		mkCreate(3, 0, 10, "/b", "", 0, 0, "/b"),
	)
	p, err := prepare(&h)
	if err != nil {
		t.Fatal(err)
	}
	parts := partitionOperations(p.ops)
	n := 0
	for _, part := range parts {
		n += len(part)
	}
	if len(parts) != 3 || n != 3 {
		t.Fatalf("parts %d ops %d", len(parts), n)
	}
	if porcupine.CheckOperations(newModel(), p.ops) != true {
		t.Fatal("not linearizable")
	}
}
