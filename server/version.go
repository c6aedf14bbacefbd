package server

import (
	"strings"
)

// Version is zabkeeper's own release version. Release builds override it with
// -ldflags "-X github.com/zabkeeper/zabkeeper/server.Version=...".
var Version = "0.1.0-dev"

// BuildDate is the build timestamp reported by the four-letter words, in the
// form "MM/dd/yyyy HH:mm GMT" that ZooKeeper 3.4 used and that go-zk's srvr
// parser insists on. Release builds override it with -ldflags.
var BuildDate = "01/01/2026 00:00 GMT"

// ZooKeeperVersion is the ZooKeeper release whose client protocol and
// administrative output zabkeeper follows.
const ZooKeeperVersion = "3.9.0"

// FullVersion returns the version string reported by srvr, stat, mntr and envi,
// for example "3.9.0-zabkeeper-0.1.0-dev, built on 01/01/2026 00:00 GMT".
//
// Characters other than letters, digits, '.' and '-' in Version are replaced
// by '-', because monitoring tools (go-zk's FLWSrvr among them) only accept
// those in the version token.
func FullVersion() string {
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			return r
		default:
			return '-'
		}
	}, Version)
	return ZooKeeperVersion + "-zabkeeper-" + clean + ", built on " + BuildDate
}
