package tree

import "testing"

// TestDigestOfNewTreeMatchesZooKeeper checks the digest of a fresh tree
// against the value Apache ZooKeeper 3.8 reports for an empty tree (the
// root as "" and /zookeeper, each with a zero Stat; /zookeeper/quota and
// /zookeeper/config are left out).
func TestDigestOfNewTreeMatchesZooKeeper(t *testing.T) {
	if got := New(Options{}).Digest(); got != 1371985504 {
		t.Fatalf("digest of a new tree = %d, ZooKeeper's is 1371985504", got)
	}
}

func TestEphemeralOwnerRoundTrip(t *testing.T) {
	for _, n := range []node{
		{kind: kindPersistent},
		{kind: kindEphemeral, owner: 0x0100_0000_0000_0001},
		{kind: kindEphemeral, owner: -5},
		{kind: kindContainer},
		{kind: kindTTL, owner: 1},
		{kind: kindTTL, owner: maxTTL},
	} {
		var back node
		back.setEphemeralOwner(n.ephemeralOwner())
		if back.kind != n.kind || back.owner != n.owner {
			t.Errorf("%+v -> %#x -> %+v", n, n.ephemeralOwner(), back)
		}
	}
}
