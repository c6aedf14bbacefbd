package zklink

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// Dynamic reconfiguration on the wire (docs/ZAB.md, "Membership"). The
// engine carries configurations as zab.Membership (ids and roles, the
// version); ZooKeeper carries them as QuorumVerifier.toString() strings,
// which also name every member's addresses. A Book supplies those: with
// one, a leader link's NEWLEADER and a notification carry the engine's
// configuration as ZooKeeper's string, and the string a peer sent decodes
// back to a Membership (ParseConfig). COMMITANDACTIVATE and
// INFORMANDACTIVATE are ZooKeeper's packets as they are (the designated
// leader's sid, then for INFORMANDACTIVATE the txn).
//
// What ZooKeeper's notifications cannot say: the pending configuration
// (ZooKeeper sends only its active one). A zabkeeper sender whose caller
// knows the receiver is zabkeeper appends it after ZooKeeper's record
// (EncodeNotificationTo with extended set), where ZooKeeper's receiver
// would not read; to any other receiver the notification is exactly
// ZooKeeper's bytes.

// Book returns the addresses of member id, to print it in a config string;
// ok is false for an unknown server.
type Book func(id int64) (m Member, ok bool)

// RenderConfig returns c as ZooKeeper's config string (ConfigString), the
// roles c's, the addresses book's.
func RenderConfig(c zab.Membership, book Book) ([]byte, error) {
	ms := make([]Member, 0, len(c.Voters)+len(c.Observers))
	for _, ids := range [][]int64{c.Voters, c.Observers} {
		for _, id := range ids {
			m, ok := book(id)
			if !ok {
				return nil, fmt.Errorf("zklink: configuration %#x: no address for server %d", c.Version, id)
			}
			m.ID, m.Observer = id, c.IsObserver(id)
			ms = append(ms, m)
		}
	}
	return ConfigString(ms, c.Version), nil
}

// ParseConfig reads the membership of a ZooKeeper config string: ids and
// roles from its server.N lines, the version from "version=" (hex; 0 when
// absent). Addresses are not checked beyond the role field.
func ParseConfig(b []byte) (zab.Membership, error) {
	// Lines cut one by one and ids checked against the lists so far (a
	// handful): a notification's config is parsed on every decode, and
	// the line slice and the seen-map were most of its allocations.
	var m zab.Membership
	for rest := string(b); rest != ""; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return zab.Membership{}, fmt.Errorf("zklink: config line %q has no '='", line)
		}
		switch {
		case key == "version":
			v, err := strconv.ParseUint(val, 16, 64)
			if err != nil {
				return zab.Membership{}, fmt.Errorf("zklink: config version %q: %w", val, err)
			}
			m.Version = int64(v)
		case strings.HasPrefix(key, "server."):
			id, err := strconv.ParseInt(key[len("server."):], 10, 64)
			if err != nil || id <= 0 || slices.Contains(m.Voters, id) || slices.Contains(m.Observers, id) {
				return zab.Membership{}, fmt.Errorf("zklink: config line %q: bad or repeated server id", line)
			}
			addr, _, _ := strings.Cut(val, ";")
			role := addr[strings.LastIndexByte(addr, ':')+1:]
			if role == "observer" {
				m.Observers = append(m.Observers, id)
			} else {
				m.Voters = append(m.Voters, id)
			}
		default:
			// group./weight. lines (hierarchical quorums) are not
			// supported: the engine counts majorities.
			return zab.Membership{}, fmt.Errorf("zklink: config line %q not supported", line)
		}
	}
	slices.Sort(m.Voters)
	slices.Sort(m.Observers)
	return m, nil
}

// extMagic starts the zabkeeper trailer of a notification: "ZKX1".
const extMagic uint32 = 0x5a4b5831

// EncodeNotificationTo is EncodeNotification for a sender with reconfig:
// the config field carries the active configuration of m.Payload
// (zab.AppendConfigs) as ZooKeeper's string, from book. With extended (the
// receiver is zabkeeper), a pending configuration follows ZooKeeper's
// record as a trailer: magic, then zab.AppendMembership's bytes. Without a
// payload it is EncodeNotification(m, static).
func EncodeNotificationTo(m zab.Message, book Book, static []byte, extended bool) ([]byte, error) {
	if len(m.Payload) == 0 || book == nil {
		return EncodeNotification(m, static)
	}
	active, pending, err := zab.DecodeConfigs(m.Payload)
	if err != nil {
		return nil, fmt.Errorf("zklink: notification configurations: %w", err)
	}
	cfg, err := RenderConfig(active, book)
	if err != nil {
		return nil, err
	}
	b, err := EncodeNotification(m, cfg)
	if err != nil || !extended || pending == nil {
		return b, err
	}
	b = binary.BigEndian.AppendUint32(b, extMagic)
	return zab.AppendMembership(b, *pending), nil
}

// notificationConfigs returns the Payload a received notification gives
// the engine: its config string's membership and, from a zabkeeper
// trailer, the pending one; nil when the config does not parse (ZooKeeper
// logs it and still counts the vote).
func notificationConfigs(payload []byte, n *quorum.Notification) []byte {
	if n.Version < 2 || len(n.Config) == 0 {
		return nil
	}
	active, err := ParseConfig(n.Config)
	if err != nil {
		return nil
	}
	var pending *zab.Membership
	if rest := payload[44+len(n.Config):]; len(rest) >= 4 && binary.BigEndian.Uint32(rest) == extMagic {
		if c, err := zab.DecodeMembership(rest[4:]); err == nil {
			pending = &c
		}
	}
	return zab.AppendConfigs(nil, active, pending)
}

// newLeaderConfig is NEWLEADER's data for the engine's m (leader side).
func (l *Link) newLeaderConfig(m zab.Message) ([]byte, error) {
	if len(m.Payload) == 0 || l.book == nil {
		return l.config, nil
	}
	c, err := zab.DecodeMembership(m.Payload)
	if err != nil {
		return nil, fmt.Errorf("zklink: NEWLEADER configuration: %w", err)
	}
	return RenderConfig(c, l.book)
}

// newLeaderPayload is the engine's MsgNewLeader payload for NEWLEADER's
// data (learner side): the membership of the leader's config string.
func newLeaderPayload(data []byte) ([]byte, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%w: NEWLEADER config: %v", quorum.ErrMalformed, err)
	}
	return zab.AppendMembership(nil, c), nil
}

// SetBook gives the link the members' addresses it prints configurations
// with, and turns on the translation of NEWLEADER's configuration: a
// leader link sends the engine's last-seen configuration as ZooKeeper's
// string, a learner link gives the engine the leader's. Without one,
// NEWLEADER carries the static config string the link was made with and
// the engine gets none (a static string's version would make a learner
// whose configuration changed since refuse its leader).
func (l *Link) SetBook(b Book) { l.book = b }

// SetBook gives every connection opened from now on the book (Link.SetBook).
func (t *Conns) SetBook(b Book) { t.book = b }

// ErrConfigAhead is wrapped by the error of a learner's FOLLOWERINFO or
// OBSERVERINFO whose configuration version is newer than the leader's
// active one: the connection closes (ZooKeeper's LearnerHandler: "Follower
// is ahead of the leader (has a later activated configuration)"), and the
// learner, whose link broke, looks for a leader again; its notifications
// carry the newer configuration.
var ErrConfigAhead = errors.New("learner is ahead of the leader (has a later activated configuration)")

// SetConfigVersion records the version of this server's active
// configuration: a learner link's FOLLOWERINFO carries it, as ZooKeeper's
// Learner sends its quorum verifier's, and a leader link refuses a learner
// whose FOLLOWERINFO carries a newer one, as ZooKeeper's LearnerHandler
// does. Without it a learner sends version 0 and a leader checks nothing.
func (l *Link) SetConfigVersion(v int64) { l.version, l.hasVersion = v, true }

// checkLearnerConfig is LearnerHandler's check of the configuration
// version in a learner's first packet (one of 20 bytes or more; an older
// learner's carries none, -1).
func (l *Link) checkLearnerConfig(li quorum.LearnerInfo) error {
	if !l.hasVersion || li.ConfigVersion <= l.version {
		return nil
	}
	return fmt.Errorf("%w: learner %d has configuration %#x, this leader %#x", ErrConfigAhead, li.Sid, li.ConfigVersion, l.version)
}

// SetConfigVersion records this server's active configuration version for
// every connection opened from now on (Link.SetConfigVersion). Open ones
// keep theirs: a link uses it only for its first packet (a learner's
// FOLLOWERINFO, a leader's check of it), and zktcp's links are used by
// their own goroutines.
func (t *Conns) SetConfigVersion(v int64) { t.version, t.hasVersion = v, true }
