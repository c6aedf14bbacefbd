//go:build simbugs

package bugs

// Enabled reports whether this build can plant bugs.
const Enabled = true

// active is the planted bug. The simulator runs on one goroutine and sets
// it before it builds the nodes.
var active Bug

// Active reports whether bug b is planted.
func Active(b Bug) bool { return active == b }

// Set plants b (None removes any).
func Set(b Bug) { active = b }
