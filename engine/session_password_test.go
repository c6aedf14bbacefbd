package engine

import (
	"encoding/hex"
	"testing"
)

// TestSessionPasswordMatchesJava checks SessionPassword against values
// printed by Java 17 for new java.util.Random(id ^ 0xB3415C00L).nextBytes on
// 16 bytes, ZooKeeper's ZooKeeperServer.generatePasswd.
func TestSessionPasswordMatchesJava(t *testing.T) {
	for _, c := range []struct {
		id   uint64
		want string
	}{
		{0, "f22acd4a97e69d6d20a49bb638eadb38"},
		{1, "054cc74a37327db215e702e20c73f005"},
		{0x1000000abcdef, "f72266553fc5708d7402a3dbe30f0a08"},
		{0xffffffffffffffff, "20f62cb5648dc2d771471c8a2486a9ee"},
		{0x7f00000000000001, "054cc74a37327db215e702e20c73f005"},
	} {
		if got := hex.EncodeToString(SessionPassword(int64(c.id), SuperSecret)); got != c.want {
			t.Errorf("SessionPassword(%#x) = %s, Java gives %s", c.id, got, c.want)
		}
	}
}
