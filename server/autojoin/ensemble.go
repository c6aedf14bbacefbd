package autojoin

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
)

// Member is one server.N line of an ensemble's configuration, as
// /zookeeper/config holds it: server.N=host:quorumPort:electionPort:role;clientAddr:clientPort.
type Member struct {
	// ID is N.
	ID int
	// Spec is everything after "server.N=", the role included when the
	// line names one (ZooKeeper always prints it).
	Spec string
	// Observer is true for a non-voting member.
	Observer bool
	// Client is where clients reach the member (host:port), "" when the
	// line has no client part.
	Client string
}

// Line is the member's server.N line, as reconfig's joining list takes it.
func (m Member) Line() string { return "server." + strconv.Itoa(m.ID) + "=" + m.Spec }

// WithRole is the member with its role set: observer or participant.
func (m Member) WithRole(observer bool) Member {
	serverPart, clientPart, hasClient := strings.Cut(m.Spec, ";")
	fields := strings.Split(serverPart, ":")
	if n := len(fields); n > 0 {
		switch strings.ToLower(fields[n-1]) {
		case "observer", "participant":
			fields = fields[:n-1]
		}
	}
	role := "participant"
	if observer {
		role = "observer"
	}
	spec := strings.Join(fields, ":") + ":" + role
	if hasClient {
		spec += ";" + clientPart
	}
	return Member{ID: m.ID, Spec: spec, Observer: observer, Client: m.Client}
}

// ParseMember reads a server.N line's id and value. host is the peer host
// the client address falls back to when the client part names a wildcard
// address or none.
func ParseMember(id int, spec string) (Member, error) {
	if id < 1 || id > 255 {
		return Member{}, fmt.Errorf("server id %d out of range [1, 255]", id)
	}
	spec = strings.TrimSpace(spec)
	serverPart, clientPart, hasClient := strings.Cut(spec, ";")
	host, rest, ok := cutHost(serverPart)
	fields := strings.Split(rest, ":")
	if !ok || host == "" || len(fields) < 2 || len(fields) > 3 {
		return Member{}, fmt.Errorf("server.%d=%s: want host:quorumPort:electionPort[:role][;[clientAddr:]clientPort]", id, spec)
	}
	m := Member{ID: id, Spec: spec}
	if len(fields) == 3 {
		switch strings.ToLower(fields[2]) {
		case "observer":
			m.Observer = true
		case "participant":
		default:
			return Member{}, fmt.Errorf("server.%d=%s: role %q is neither participant nor observer", id, spec, fields[2])
		}
	}
	if hasClient {
		clientPart = strings.TrimSpace(clientPart)
		chost, cport := "", clientPart
		if i := strings.LastIndexByte(clientPart, ':'); i >= 0 {
			chost, cport = strings.Trim(clientPart[:i], "[]"), clientPart[i+1:]
		}
		if _, err := strconv.ParseUint(cport, 10, 16); err != nil {
			return Member{}, fmt.Errorf("server.%d=%s: bad client port %q", id, spec, cport)
		}
		if chost == "" || chost == "0.0.0.0" || chost == "::" || chost == "0:0:0:0:0:0:0:0" {
			chost = host
		}
		m.Client = net.JoinHostPort(chost, cport)
	}
	return m, nil
}

// cutHost splits host from the ports of "host:q:e", host possibly an IPv6
// literal in brackets.
func cutHost(s string) (host, rest string, ok bool) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 || len(s) == end+1 || s[end+1] != ':' {
			return "", "", false
		}
		return s[1:end], s[end+2:], true
	}
	return strings.Cut(s, ":")
}

// Ensemble is an ensemble's configuration: its members and version (the
// zxid of the reconfig that made it, 0 for a configuration from files).
type Ensemble struct {
	Members map[int]Member
	Version int64
}

// ParseEnsemble reads /zookeeper/config's data: server.N lines and
// version=<hex>.
func ParseEnsemble(data string) (Ensemble, error) {
	e := Ensemble{Members: map[int]Member{}}
	for _, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		switch {
		case !ok:
			return Ensemble{}, fmt.Errorf("config line %q is not key=value", line)
		case key == "version":
			v, err := strconv.ParseInt(value, 16, 64)
			if err != nil {
				return Ensemble{}, fmt.Errorf("config version %q is not a hex number", value)
			}
			e.Version = v
		case strings.HasPrefix(key, "server."):
			id, err := strconv.Atoi(strings.TrimPrefix(key, "server."))
			if err != nil {
				return Ensemble{}, fmt.Errorf("config line %q: bad server id", line)
			}
			m, err := ParseMember(id, value)
			if err != nil {
				return Ensemble{}, err
			}
			e.Members[id] = m
		default:
			return Ensemble{}, fmt.Errorf("config line %q: unexpected key", line)
		}
	}
	if len(e.Members) == 0 {
		return Ensemble{}, fmt.Errorf("config names no server (a standalone server, or reconfig's config is empty)")
	}
	return e, nil
}

// String is the configuration in /zookeeper/config's form, members by id.
func (e Ensemble) String() string {
	var b strings.Builder
	for _, id := range e.IDs() {
		b.WriteString(e.Members[id].Line())
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "version=%x\n", e.Version)
	return b.String()
}

// IDs are the member ids in increasing order.
func (e Ensemble) IDs() []int {
	ids := make([]int, 0, len(e.Members))
	for id := range e.Members {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	return ids
}

// Clients are the members' client addresses, by id.
func (e Ensemble) Clients() []string {
	var out []string
	for _, id := range e.IDs() {
		if c := e.Members[id].Client; c != "" {
			out = append(out, c)
		}
	}
	return out
}

// Voters counts the participants.
func (e Ensemble) Voters() int {
	n := 0
	for _, m := range e.Members {
		if !m.Observer {
			n++
		}
	}
	return n
}
