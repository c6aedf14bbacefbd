package engine

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Member is one server of an ensemble as a server.N line names it, for
// ConfigData.
type Member struct {
	// ID is N.
	ID int64
	// Host is the host as the line writes it (an IPv6 literal without
	// brackets).
	Host string
	// QuorumPort and ElectionPort are the line's two ports.
	QuorumPort, ElectionPort int
	// Observer is true for ":observer".
	Observer bool
	// ClientPort is the port of the line's ";[clientAddr:]clientPort"
	// part, 0 when the line has none.
	ClientPort int
	// ClientHost is that part's address, "" when it gives only the port.
	ClientHost string
}

// ConfigData is what ZooKeeper 3.8 puts in /zookeeper/config for an
// ensemble (QuorumMaj.toString): one "server.N=host:quorumPort:electionPort:
// role" line per member, with ";clientHost:clientPort" when the member's
// line has a client part (a port alone reads as 0.0.0.0, as
// QuorumServer's parser makes it; a client address taken from
// clientPort/clientPortAddress is not printed, isClientAddrFromStatic),
// then "version=" and the version in lower-case hex, no final newline.
//
// The lines come in the iteration order of the Java HashMap<Long, ...>
// ZooKeeper keeps the members in: by id modulo the table's capacity (16,
// doubled while members exceed three quarters of it), which is ascending
// id order whenever every id is below the capacity. Ids equal modulo the
// capacity come in ascending order here; ZooKeeper's order among those
// follows the order it read the lines in, which this does not model.
func ConfigData(members []Member, version int64) string {
	capacity := 16
	for len(members) > capacity*3/4 {
		capacity *= 2
	}
	ms := slices.Clone(members)
	slices.SortFunc(ms, func(a, b Member) int {
		return cmp.Or(cmp.Compare(a.ID&int64(capacity-1), b.ID&int64(capacity-1)), cmp.Compare(a.ID, b.ID))
	})
	var b strings.Builder
	for _, m := range ms {
		b.WriteString("server.")
		b.WriteString(strconv.FormatInt(m.ID, 10))
		b.WriteByte('=')
		b.WriteString(hostPort(m.Host, m.QuorumPort))
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(m.ElectionPort))
		if m.Observer {
			b.WriteString(":observer")
		} else {
			b.WriteString(":participant")
		}
		if m.ClientPort != 0 {
			host := m.ClientHost
			if host == "" {
				host = "0.0.0.0"
			}
			b.WriteByte(';')
			b.WriteString(hostPort(host, m.ClientPort))
		}
		b.WriteByte('\n')
	}
	b.WriteString("version=")
	b.WriteString(strconv.FormatUint(uint64(version), 16))
	return b.String()
}

// hostPort is host:port with an IPv6 literal in brackets, as ZooKeeper's
// QuorumServer.delimitedHostString writes it (net.JoinHostPort, without
// importing net into the engine).
func hostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(port)
}

// SimulatedConfigData is ConfigData for an ensemble whose servers have no
// addresses, the simulator's: server N at 127.0.0.1 on ports 2888+N and
// 3888+N, version 0, so its trees hold what a real ensemble's would.
func SimulatedConfigData(voters, observers []int64) string {
	if len(voters)+len(observers) == 0 {
		return ""
	}
	var ms []Member
	for _, id := range voters {
		ms = append(ms, Member{ID: id, Host: "127.0.0.1", QuorumPort: 2888 + int(id), ElectionPort: 3888 + int(id)})
	}
	for _, id := range observers {
		ms = append(ms, Member{ID: id, Host: "127.0.0.1", QuorumPort: 2888 + int(id), ElectionPort: 3888 + int(id), Observer: true})
	}
	return ConfigData(ms, 0)
}
