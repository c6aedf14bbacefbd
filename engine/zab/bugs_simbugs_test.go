//go:build simbugs

package zab

import (
	"os"

	"github.com/zabkeeper/zabkeeper/engine/bugs"
)

// With -tags simbugs, ZAB_BUG=<name> plants a bug for the whole test binary,
// so `go test -tags simbugs ./engine/zab -run TestRandomized` shows the
// randomized checker catching it.
func init() {
	if name := os.Getenv("ZAB_BUG"); name != "" {
		b, ok := bugs.Parse(name)
		if !ok {
			panic("unknown bug " + name)
		}
		bugs.Set(b)
	}
}
