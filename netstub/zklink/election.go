package zklink

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// EncodeNotification returns the election frame payload of a
// MsgNotification: ZooKeeper's version 2 notification (Round =
// electionEpoch, states 0..3 = Looking..Observing) with config, the
// ensemble's config string (ConfigString).
func EncodeNotification(m zab.Message, config []byte) ([]byte, error) {
	if m.Type != zab.MsgNotification {
		return nil, fmt.Errorf("zklink: %v is not an election message", m.Type)
	}
	if m.Vote.State < zab.Looking || m.Vote.State > zab.Observing {
		return nil, fmt.Errorf("zklink: vote state %d has no ZooKeeper state", m.Vote.State)
	}
	n := quorum.Notification{
		State:         quorum.ServerState(m.Vote.State),
		Leader:        m.Vote.Leader,
		Zxid:          m.Vote.Zxid,
		ElectionEpoch: m.Vote.Round,
		PeerEpoch:     m.Vote.PeerEpoch,
		Version:       quorum.NotificationVersion,
		Config:        config,
	}
	return n.Encode()
}

// DecodeNotification returns the MsgNotification an election frame from
// server from carries. Every form a 3.5+ ZooKeeper reads is accepted (28
// and 40 bytes, versions 1 and 2). The config string, and a zabkeeper
// sender's pending configuration after it, become the Payload the engine's
// reconfig reads (zab.AppendConfigs; reconfig.go). A state other than
// LOOKING..OBSERVING is an error.
func DecodeNotification(from, to int64, payload []byte) (zab.Message, error) {
	n, err := quorum.DecodeNotification(payload)
	if err != nil {
		return zab.Message{}, fmt.Errorf("zklink: notification from %d: %w", from, err)
	}
	if n.State < quorum.Looking || n.State > quorum.Observing {
		return zab.Message{}, fmt.Errorf("zklink: notification from %d: %w: state %d", from, quorum.ErrMalformed, n.State)
	}
	if n.Version < 0 {
		return zab.Message{}, fmt.Errorf("zklink: notification from %d: %w: version %d", from, quorum.ErrVersion, n.Version)
	}
	return zab.Message{
		Type: zab.MsgNotification, From: from, To: to, Payload: notificationConfigs(payload, &n),
		Vote: zab.Vote{
			Leader: n.Leader, Zxid: n.Zxid, PeerEpoch: n.PeerEpoch, Round: n.ElectionEpoch,
			State: zab.Role(n.State),
		},
	}, nil
}

// Member is one server.N line of the ensemble, as the config string
// prints it.
type Member struct {
	ID           int64
	Host         string
	QuorumPort   int
	ElectionPort int
	Observer     bool
	// ClientAddr is the client address of the line's ";" part
	// ("host:port"), "" when the client port is configured on its own
	// (clientPort=), which ZooKeeper's string leaves out.
	ClientAddr string
}

// ConfigString returns the ensemble's config as ZooKeeper's
// QuorumVerifier.toString prints it and sends it in notifications and
// NEWLEADER: one "server.N=host:quorumPort:electionPort:role[;client]" line
// per member in id order, then "version=" and the version in hex (0: no
// reconfig, static zoo.cfg).
func ConfigString(members []Member, version int64) []byte {
	ms := slices.Clone(members)
	slices.SortFunc(ms, func(a, b Member) int { return int(a.ID - b.ID) })
	var sb strings.Builder
	for _, m := range ms {
		role := "participant"
		if m.Observer {
			role = "observer"
		}
		sb.WriteString("server." + strconv.FormatInt(m.ID, 10) + "=")
		sb.WriteString(hostString(m.Host) + ":" + strconv.Itoa(m.QuorumPort) + ":" + strconv.Itoa(m.ElectionPort) + ":" + role)
		if m.ClientAddr != "" {
			sb.WriteString(";" + m.ClientAddr)
		}
		sb.WriteByte('\n')
	}
	sb.WriteString("version=" + strconv.FormatInt(version, 16))
	return []byte(sb.String())
}

// hostString brackets an IPv6 literal (ZooKeeper's delimitedHostString).
func hostString(h string) string {
	if ip := net.ParseIP(h); ip != nil && strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}
