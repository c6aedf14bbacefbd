//go:build !simbugs

package bugs

// Enabled reports whether this build can plant bugs.
const Enabled = false

// Active reports whether bug b is planted: never, in this build.
func Active(Bug) bool { return false }

// Set plants b. Without the simbugs tag only None is accepted.
func Set(b Bug) {
	if b != None {
		panic("bugs: planting " + b.String() + " needs a build with -tags simbugs")
	}
}
