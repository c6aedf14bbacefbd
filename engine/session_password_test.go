package engine

import (
	"encoding/hex"
	"testing"
)

// TestSessionPasswordMatchesZooKeeper checks SessionPassword against values
// printed by Java's new Random(id ^ 0xB3415C00L).nextBytes(new byte[16]),
// which is ZooKeeperServer.generatePasswd.
func TestSessionPasswordMatchesZooKeeper(t *testing.T) {
	for _, c := range []struct {
		id   uint64
		want string
	}{
		{0x1, "054cc74a37327db215e702e20c73f005"},
		{0x100000000000001, "054cc74a37327db215e702e20c73f005"}, // Random keeps 48 seed bits
		{0x7fffffffffffffff, "20f62cb5648dc2d771471c8a2486a9ee"},
		{0xffffffffffffffff, "20f62cb5648dc2d771471c8a2486a9ee"},
		{0x0a7d3b4c5e000001, "059a86f2376805e715e585680c99ea23"},
	} {
		if got := hex.EncodeToString(SessionPassword(int64(c.id))); got != c.want {
			t.Errorf("SessionPassword(%#x) = %s, ZooKeeper's is %s", c.id, got, c.want)
		}
	}
}
