package zklink

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// testBook gives server N the address 10.0.0.N, N <= 9.
func testBook(id int64) (Member, bool) {
	if id < 1 || id > 9 {
		return Member{}, false
	}
	return Member{ID: id, Host: fmt.Sprintf("10.0.0.%d", id), QuorumPort: 2888, ElectionPort: 3888}, true
}

func TestRenderAndParseConfig(t *testing.T) {
	c := zab.Membership{Version: zab.MakeZxid(3, 7), Voters: []int64{1, 2, 4}, Observers: []int64{5}}
	b, err := RenderConfig(c, testBook)
	require.NoError(t, err)
	require.Equal(t, "server.1=10.0.0.1:2888:3888:participant\nserver.2=10.0.0.2:2888:3888:participant\n"+
		"server.4=10.0.0.4:2888:3888:participant\nserver.5=10.0.0.5:2888:3888:observer\nversion=300000007", string(b))
	got, err := ParseConfig(b)
	require.NoError(t, err)
	require.Equal(t, c, got)

	_, err = RenderConfig(zab.Membership{Voters: []int64{10}}, testBook)
	require.Error(t, err, "a member without an address")

	// ZooKeeper's other forms: IPv6 hosts, client addresses, no role.
	got, err = ParseConfig([]byte("server.3=[::1]:2888:3888:observer;[::1]:2181\nserver.1=h:1:2\nversion=0"))
	require.NoError(t, err)
	require.Equal(t, zab.Membership{Voters: []int64{1}, Observers: []int64{3}}, got)
	for _, bad := range []string{"server.0=h:1:2", "server.1=h:1:2\nserver.1=h:1:2", "version=zz", "group.1=1:2", "server.1"} {
		_, err := ParseConfig([]byte(bad))
		require.Error(t, err, bad)
	}
}

// A notification's config field is ZooKeeper's string of the active
// configuration, byte for byte, unless the receiver is zabkeeper: then the
// pending configuration follows the record.
func TestNotificationConfigs(t *testing.T) {
	active := zab.Membership{Version: zab.MakeZxid(1, 2), Voters: []int64{1, 2, 3}}
	pending := zab.Membership{Version: zab.MakeZxid(1, 9), Voters: []int64{1, 2, 3, 4}}
	m := zab.Message{Type: zab.MsgNotification, From: 2, To: 1, Vote: zab.Vote{Leader: 2, Zxid: 9, PeerEpoch: 1, Round: 3},
		Payload: zab.AppendConfigs(nil, active, &pending)}
	cfg, err := RenderConfig(active, testBook)
	require.NoError(t, err)
	zk, err := EncodeNotification(m, cfg)
	require.NoError(t, err)

	plain, err := EncodeNotificationTo(m, testBook, testConfig, false)
	require.NoError(t, err)
	require.Equal(t, zk, plain, "a ZooKeeper receiver sees ZooKeeper's bytes")
	got, err := DecodeNotification(2, 1, plain)
	require.NoError(t, err)
	require.Equal(t, zab.AppendConfigs(nil, active, nil), got.Payload)

	ext, err := EncodeNotificationTo(m, testBook, testConfig, true)
	require.NoError(t, err)
	require.Equal(t, zk, ext[:len(zk)], "ZooKeeper's record first")
	n, err := quorum.DecodeNotification(ext)
	require.NoError(t, err)
	require.Equal(t, cfg, n.Config, "a ZooKeeper receiver reads the active configuration only")
	got, err = DecodeNotification(2, 1, ext)
	require.NoError(t, err)
	require.Equal(t, m, got)

	// Without configurations (reconfig off), the static string.
	m.Payload = nil
	b, err := EncodeNotificationTo(m, testBook, testConfig, true)
	require.NoError(t, err)
	want, err := EncodeNotification(m, testConfig)
	require.NoError(t, err)
	require.Equal(t, want, b)
}

// NEWLEADER carries the leader's last-seen configuration as ZooKeeper's
// string; COMMITANDACTIVATE commits in order up to the reconfig entry and
// names the designated leader; INFORMANDACTIVATE carries the txn to an
// observer.
func TestReconfigPackets(t *testing.T) {
	learner, leader := handshake(t, false)
	leader.SetBook(testBook)
	learner.SetBook(testBook)
	seen := zab.Membership{Version: zab.MakeZxid(5, 3), Voters: []int64{1, 2, 4}}
	for z := int64(1); z <= 3; z++ {
		send(t, leader, learner, proposal(zab.MakeZxid(5, z)))
	}
	pkts, got := send(t, leader, learner, zab.Message{Type: zab.MsgNewLeader, Epoch: 5, Zxid: zab.MakeZxid(5, 0), Payload: zab.AppendMembership(nil, seen)})
	cfg, err := RenderConfig(seen, testBook)
	require.NoError(t, err)
	require.Equal(t, quorum.NewNewLeader(5, cfg), pkts[0])
	require.Equal(t, zab.AppendMembership(nil, seen), got[0].Payload)

	pkts, got = send(t, leader, learner, zab.Message{Type: zab.MsgCommitAndActivate, Epoch: 5, Zxid: zab.MakeZxid(5, 3), Vote: zab.Vote{Leader: 4}})
	ts, zs := types(pkts)
	require.Equal(t, []quorum.PacketType{quorum.Commit, quorum.Commit, quorum.CommitAndActivate}, ts)
	require.Equal(t, []int64{zab.MakeZxid(5, 1), zab.MakeZxid(5, 2), zab.MakeZxid(5, 3)}, zs)
	require.Equal(t, quorum.NewCommitAndActivate(zab.MakeZxid(5, 3), 4), pkts[2])
	require.Equal(t, zab.Message{Type: zab.MsgCommitAndActivate, From: 1, To: 2, Epoch: 5, Zxid: zab.MakeZxid(5, 3), Vote: zab.Vote{Leader: 4}}, got[2])
	require.Empty(t, leader.Pending())

	obs, oleader := handshake(t, true)
	e := zab.Entry{Zxid: zab.MakeZxid(5, 3), Data: []byte("reconfig txn")}
	pkts, got = send(t, oleader, obs, zab.Message{Type: zab.MsgInformAndActivate, Epoch: 5, Entry: e, Vote: zab.Vote{Leader: 4}})
	require.Equal(t, []quorum.Packet{quorum.NewInformAndActivate(e.Zxid, 4, e.Data)}, pkts)
	require.Equal(t, []zab.Message{{Type: zab.MsgInformAndActivate, From: 1, To: 2, Epoch: 5, Entry: e, Vote: zab.Vote{Leader: 4}}}, got)
}

// A reconfig entry the link never carried (a new leader activating an
// earlier epoch's entry the learner already held) gets no
// COMMITANDACTIVATE: a ZooKeeper follower would exit on one that is not
// for its oldest pending proposal. Found by the simulator (seed 149).
func TestCommitAndActivateOnlyForThePendingEntry(t *testing.T) {
	learner, leader := handshake(t, false)
	send(t, leader, learner, proposal(zab.MakeZxid(5, 1)))
	pkts, got := send(t, leader, learner, zab.Message{Type: zab.MsgCommitAndActivate, Epoch: 5, Zxid: zab.MakeZxid(3, 2), Vote: zab.Vote{Leader: 1}})
	require.Empty(t, pkts)
	require.Empty(t, got)
	require.Equal(t, []int64{zab.MakeZxid(5, 1)}, leader.Pending())
	pkts, _ = send(t, leader, learner, zab.Message{Type: zab.MsgCommit, Epoch: 5, Zxid: zab.MakeZxid(5, 1)})
	require.Equal(t, []quorum.Packet{quorum.NewCommit(zab.MakeZxid(5, 1))}, pkts)
}

// NEWLEADER's config reaches the engine only on a link with a book, and a
// config string that does not parse closes it.
func TestNewLeaderConfigNeedsABook(t *testing.T) {
	static := NewLearnerLink(2, 1)
	_, err := static.Decode(quorum.NewLeaderInfo(1))
	require.NoError(t, err)
	ms, err := static.Decode(quorum.NewNewLeader(1, testConfig))
	require.NoError(t, err)
	require.Nil(t, ms[0].Payload, "a static config string says nothing to compare")

	booked := NewLearnerLink(2, 1)
	booked.SetBook(testBook)
	_, err = booked.Decode(quorum.NewLeaderInfo(1))
	require.NoError(t, err)
	_, err = booked.Decode(quorum.NewNewLeader(1, []byte("server.x=a:1:2")))
	require.ErrorIs(t, err, quorum.ErrMalformed)
}

// FOLLOWERINFO carries the learner's active configuration version (bytes
// 12..19 of its LearnerInfo, as ZooKeeper's Learner writes
// self.getQuorumVerifier().getVersion()), 0 before SetConfigVersion.
func TestFollowerInfoCarriesConfigVersion(t *testing.T) {
	v := zab.MakeZxid(1, 0)
	for _, tc := range []struct {
		set  bool
		want int64
	}{{false, 0}, {true, v}} {
		l := NewConns(2, testConfig)
		if tc.set {
			l.SetConfigVersion(v)
		}
		c, _ := l.Dial(1)
		pkts, err := c.Link.Encode(zab.Message{Type: zab.MsgFollowerInfo, To: 1, Epoch: 3})
		require.NoError(t, err)
		require.Len(t, pkts, 1)
		require.Equal(t, quorum.NewLearnerInfo(false, 3, quorum.LearnerInfo{Sid: 2, ProtocolVersion: quorum.LearnerProtocol, ConfigVersion: tc.want}), pkts[0])
		li, err := quorum.DecodeLearnerInfo(&pkts[0])
		require.NoError(t, err)
		require.Equal(t, tc.want, li.ConfigVersion)
		// The bytes: sid, protocol version, config version, big-endian.
		require.Equal(t, uint64(tc.want), binary.BigEndian.Uint64(pkts[0].Data[12:20]))
	}
}

// A leader refuses a learner whose FOLLOWERINFO carries a newer
// configuration than its active one (ZooKeeper's LearnerHandler throws
// "Follower is ahead of the leader (has a later activated configuration)"
// and closes the socket); an equal, older or absent one (-1, a 3.4
// learner) is accepted, and so is any while the version is unknown. The
// refused learner's previous connection stays, and a later SetConfigVersion
// that catches up accepts it.
func TestLeaderRefusesALearnerAheadOfIt(t *testing.T) {
	info := func(v int64) quorum.Packet {
		return quorum.NewLearnerInfo(false, 4, quorum.LearnerInfo{Sid: 2, ProtocolVersion: quorum.LearnerProtocol, ConfigVersion: v})
	}
	// A learner whose LearnerInfo stops after the protocol version (12
	// bytes) sends no configuration version.
	short := info(0)
	short.Data = short.Data[:12]
	ld := NewConns(1, testConfig)
	require.Empty(t, ld.SetRole(zab.Leading, 1))
	a, _, _, err := ld.AcceptFirst(2, info(zab.MakeZxid(9, 1)))
	require.NoError(t, err, "no version known: nothing to compare")
	require.NotNil(t, a)

	ld.SetConfigVersion(zab.MakeZxid(1, 5))
	for _, v := range []int64{0, zab.MakeZxid(1, 5), zab.MakeZxid(1, 4)} {
		c, _, msgs, err := ld.AcceptFirst(2, info(v))
		require.NoError(t, err, "version %#x", v)
		require.NotNil(t, c)
		require.Len(t, msgs, 1)
	}
	c, _, _, err := ld.AcceptFirst(2, short)
	require.NoError(t, err, "a learner that sends no version")
	require.NotNil(t, c)

	c, prev, msgs, err := ld.AcceptFirst(2, info(zab.MakeZxid(1, 6)))
	require.ErrorIs(t, err, ErrConfigAhead)
	require.Contains(t, err.Error(), "learner 2 has configuration 0x100000006, this leader 0x100000005")
	require.Nil(t, c)
	require.Nil(t, prev)
	require.Nil(t, msgs)
	require.Len(t, ld.All(), 1, "the refused learner's connection replaces nothing")

	ld.SetConfigVersion(zab.MakeZxid(1, 6))
	c, _, _, err = ld.AcceptFirst(2, info(zab.MakeZxid(1, 6)))
	require.NoError(t, err)
	require.NotNil(t, c)

	// A lone Link (the simulator's or a test's) checks the same way.
	l := NewLeaderLink(1, 2, testConfig)
	l.SetConfigVersion(0)
	_, err = l.Decode(info(zab.MakeZxid(1, 0)))
	require.ErrorIs(t, err, ErrConfigAhead)
}

// parseConfigSplit is ParseConfig as it was before it cut lines one by one
// and dropped its seen-map: the reference FuzzParseConfig compares with.
func parseConfigSplit(b []byte) (zab.Membership, error) {
	var (
		m    zab.Membership
		seen = map[int64]bool{}
	)
	for _, line := range strings.Split(string(b), "\n") {
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
			if err != nil || id <= 0 || seen[id] {
				return zab.Membership{}, fmt.Errorf("zklink: config line %q: bad or repeated server id", line)
			}
			seen[id] = true
			addr, _, _ := strings.Cut(val, ";")
			role := addr[strings.LastIndexByte(addr, ':')+1:]
			if role == "observer" {
				m.Observers = append(m.Observers, id)
			} else {
				m.Voters = append(m.Voters, id)
			}
		default:
			return zab.Membership{}, fmt.Errorf("zklink: config line %q not supported", line)
		}
	}
	slices.Sort(m.Voters)
	slices.Sort(m.Observers)
	return m, nil
}

// FuzzParseConfig checks ParseConfig against parseConfigSplit: the same
// membership or the same error for any bytes.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("server.1=10.0.0.1:2888:3888:participant;0.0.0.0:2181\nserver.2=10.0.0.2:2888:3888:observer;2181\nversion=100000000\n"))
	f.Add([]byte("server.1=a:1:2\nserver.1=b:1:2\n"))
	f.Add([]byte("\n\n  \nversion=zz"))
	f.Add([]byte("server.3=x:1:2:observer\nserver.2=y\nserver.1=z:participant\ngroup.1=1:2"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, gerr := ParseConfig(b)
		want, werr := parseConfigSplit(b)
		if fmt.Sprint(gerr) != fmt.Sprint(werr) || !reflect.DeepEqual(got, want) {
			t.Fatalf("ParseConfig(%q) = %+v, %v; before: %+v, %v", b, got, gerr, want, werr)
		}
	})
}

// BenchmarkParseConfig parses a five-server config string, as every
// decoded notification of a reconfig-capable sender does.
func BenchmarkParseConfig(b *testing.B) {
	var s strings.Builder
	for id := 1; id <= 5; id++ {
		fmt.Fprintf(&s, "server.%d=10.0.0.%d:2888:3888:participant;0.0.0.0:2181\n", id, id)
	}
	s.WriteString("version=100000000\n")
	cfg := []byte(s.String())
	b.ReportAllocs()
	for range b.N {
		if _, err := ParseConfig(cfg); err != nil {
			b.Fatal(err)
		}
	}
}
