package zab

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// reconfigPrefix marks a test entry that is a reconfig: the membership
// follows in AppendMembership's encoding.
var reconfigPrefix = []byte("reconfig:")

func testReconfigOf(data []byte) (Membership, bool) {
	if !bytes.HasPrefix(data, reconfigPrefix) {
		return Membership{}, false
	}
	m, err := DecodeMembership(data[len(reconfigPrefix):])
	return m, err == nil
}

func reconfigData(voters, observers []int64) []byte {
	return AppendMembership(slices.Clone(reconfigPrefix), newMembership(0, voters, observers))
}

// newReconfigCluster is a cluster of servers 1..n whose configuration is
// voters and observers; a server outside it starts as a joiner whose own
// configuration adds it as a voter (or an observer when in joinAsObserver),
// as ZooKeeper's documentation has a new server started.
func newReconfigCluster(t *testing.T, seed uint64, n int, voters, observers, joinAsObserver []int64) *cluster {
	var all []int64
	for i := 1; i <= n; i++ {
		all = append(all, int64(i))
	}
	c := newCluster(t, clusterOpts{voters: n, seed: seed, down: all})
	for _, id := range all {
		nd := c.nodes[id]
		nd.cfg.Voters, nd.cfg.Observers = voters, observers
		switch {
		case slices.Contains(voters, id) || slices.Contains(observers, id):
		case slices.Contains(joinAsObserver, id):
			nd.cfg.Observers = append(slices.Clone(observers), id)
		default:
			nd.cfg.Voters = append(slices.Clone(voters), id)
		}
		nd.cfg.ReconfigOf = testReconfigOf
		c.restart(id)
	}
	return c
}

// proposeReconfig proposes the configuration (voters, observers) at the
// leader and returns its zxid.
func (c *cluster) proposeReconfig(l int64, voters, observers []int64) int64 {
	data := reconfigData(voters, observers)
	c.proposed[string(data)] = true
	z, ok := c.nodes[l].p.Propose(data)
	require.True(c.t, ok, "propose reconfig at %d", l)
	c.handleReady(l)
	return z
}

// awaitFollowing runs until every server in ids is established under one
// leader, which it returns.
func (c *cluster) awaitFollowing(ids []int64, maxSteps int) int64 {
	var leader int64
	c.runUntil(fmt.Sprintf("%v established under one leader", ids), maxSteps, func() bool {
		l, ok := c.leader()
		if !ok {
			return false
		}
		for _, id := range ids {
			if !c.alive(id) {
				continue
			}
			st := c.nodes[id].p.Status()
			if !st.Established || st.Leader != l {
				return false
			}
		}
		leader = l
		return true
	})
	return leader
}

func (c *cluster) requireActive(ids []int64, version int64, voters, observers []int64) {
	for _, id := range ids {
		if !c.alive(id) {
			continue
		}
		a := c.nodes[id].p.ActiveConfig()
		require.Equal(c.t, version, a.Version, "config version on %d", id)
		require.Equal(c.t, voters, a.Voters, "voters on %d", id)
		require.Equal(c.t, observers, a.Observers, "observers on %d", id)
	}
}

func TestMembershipRoundTrip(t *testing.T) {
	m := newMembership(0x100000003, []int64{3, 1, 2}, []int64{7})
	got, err := DecodeMembership(AppendMembership(nil, m))
	require.NoError(t, err)
	require.Equal(t, m, got)
	empty, err := DecodeMembership(AppendMembership(nil, Membership{Version: 5}))
	require.NoError(t, err)
	require.Equal(t, int64(5), empty.Version)
	for name, b := range map[string][]byte{
		"short":     {1, 2},
		"trailing":  append(AppendMembership(nil, m), 0),
		"unsorted":  AppendMembership(nil, Membership{Voters: []int64{2, 1}}),
		"zero id":   AppendMembership(nil, Membership{Voters: []int64{0}}),
		"both":      AppendMembership(nil, Membership{Voters: []int64{1}, Observers: []int64{1}}),
		"huge list": {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff},
	} {
		_, err := DecodeMembership(b)
		require.ErrorIs(t, err, ErrBadMembership, name)
	}
}

func FuzzDecodeMembership(f *testing.F) {
	f.Add(AppendMembership(nil, newMembership(9, []int64{1, 2, 3}, []int64{4})))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMembership(b)
		if err != nil {
			return
		}
		require.Equal(t, b, AppendMembership(nil, m), "decoding is canonical")
	})
}

// A server that is no voter yet syncs and acks, but its acks count only
// once the reconfig that adds it is committed and active, which happens on
// every server at the reconfig's zxid.
func TestReconfigAddVoterCountsOnlyOnceActive(t *testing.T) {
	c := newReconfigCluster(t, 21, 4, []int64{1, 2, 3}, nil, nil)
	l := c.awaitFollowing([]int64{1, 2, 3, 4}, 5000)
	require.NotEqual(t, int64(4), l, "a joiner is no voter of the ensemble it joins")
	z0, _ := c.propose(l)
	c.awaitApplied(z0, c.ids, 3000)

	// The leader and the joiner alone are no quorum of {1,2,3}.
	var others []int64
	for _, id := range []int64{1, 2, 3} {
		if id != l {
			others = append(others, id)
		}
	}
	c.silentPartition(others)
	z1, ok := c.propose(l)
	require.True(t, ok)
	for range 200 {
		c.calmStep()
	}
	for _, id := range c.ids {
		require.False(t, c.applied(id, z1), "server %d applied a txn only the leader and a non-member acked", id)
	}
	c.healAll()
	l = c.awaitFollowing([]int64{1, 2, 3, 4}, 10000)

	z := c.proposeReconfig(l, []int64{1, 2, 3, 4}, nil)
	c.awaitApplied(z, c.ids, 5000)
	c.runUntil("activation everywhere", 3000, func() bool {
		for _, id := range c.ids {
			if c.nodes[id].p.ActiveConfig().Version != z {
				return false
			}
		}
		return true
	})
	c.requireActive(c.ids, z, []int64{1, 2, 3, 4}, nil)
	require.Positive(t, c.sent[MsgCommitAndActivate])

	// Now the leader, the new voter and one old voter are a quorum of
	// {1,2,3,4}.
	l = c.awaitFollowing(c.ids, 5000)
	var cut int64
	for _, id := range []int64{1, 2, 3} {
		if id != l {
			cut = id
			break
		}
	}
	c.crash(cut)
	z2, ok := c.propose(l)
	require.True(t, ok)
	live := slices.DeleteFunc(slices.Clone(c.ids), func(id int64) bool { return id == cut })
	c.awaitApplied(z2, live, 5000)
}

// A reconfig commits only with a quorum of the old and of the new voters:
// {1,2,3} -> {l,4,5} waits for 4 or 5, whatever 2 and 3 ack, and so does
// every txn proposed after it.
func TestReconfigNeedsQuorumOfOldAndNew(t *testing.T) {
	c := newReconfigCluster(t, 22, 5, []int64{1, 2, 3}, nil, nil)
	l := c.awaitFollowing(c.ids, 8000)
	c.stabilize()
	// The joiners' links stall: the leader still counts them synced
	// (until syncLimit, which no tick reaches here), but no ack of
	// theirs arrives.
	c.freezeLink(l, 4)
	c.freezeLink(l, 5)
	z := c.proposeReconfig(l, []int64{l, 4, 5}, nil)
	after, ok := c.propose(l)
	require.True(t, ok)
	c.stabilize()
	for _, id := range c.ids {
		require.False(t, c.applied(id, z), "server %d applied a reconfig no new quorum acked", id)
		require.False(t, c.applied(id, after), "server %d applied a txn after a pending reconfig without its quorum", id)
		// The initial configuration under the first leader's NEWLEADER
		// zxid (ZOOKEEPER-1783).
		require.Equal(t, MakeZxid(Epoch(z), 0), c.nodes[id].p.ActiveConfig().Version)
	}
	pend, ok := c.nodes[l].p.PendingConfig()
	require.True(t, ok)
	require.Equal(t, z, pend.Version)

	c.healAll()
	c.stabilize()
	for _, id := range []int64{l, 4, 5} {
		require.True(t, c.applied(id, after), "server %d", id)
		require.Equal(t, z, c.nodes[id].p.ActiveConfig().Version)
	}
}

// A leader the reconfig removes hands over to the designated leader: the
// followers go straight to it, without an election.
func TestReconfigRemovingTheLeaderHandsOver(t *testing.T) {
	c := newReconfigCluster(t, 23, 3, []int64{1, 2, 3}, nil, nil)
	l := c.awaitFollowing(c.ids, 5000)
	z0, _ := c.propose(l)
	c.awaitApplied(z0, c.ids, 3000)
	rest := slices.DeleteFunc(slices.Clone(c.ids), func(id int64) bool { return id == l })
	notes := 0
	c.onSend = func(m Message) {
		if m.Type == MsgNotification && m.From != l && m.Vote.State == Looking {
			notes++
		}
	}
	z := c.proposeReconfig(l, rest, nil)
	c.awaitApplied(z, rest, 5000)
	nl := c.awaitFollowing(rest, 5000)
	require.NotEqual(t, l, nl)
	require.Zero(t, notes, "the remaining voters elected instead of following the designated leader")
	c.requireActive(rest, z, rest, nil)
	z2, ok := c.propose(nl)
	require.True(t, ok)
	c.awaitApplied(z2, rest, 5000)
	st := c.nodes[l].p.Status()
	require.NotEqual(t, Leading, st.Role)
}

// A participant becomes an observer and back; while an observer its acks
// never count and it learns by INFORM.
func TestReconfigParticipantToObserverAndBack(t *testing.T) {
	c := newReconfigCluster(t, 24, 3, []int64{1, 2, 3}, nil, nil)
	l := c.awaitFollowing(c.ids, 5000)
	var f int64
	for _, id := range c.ids {
		if id != l {
			f = id
		}
	}
	voters := slices.DeleteFunc(slices.Clone(c.ids), func(id int64) bool { return id == f })
	z := c.proposeReconfig(l, voters, []int64{f})
	c.awaitApplied(z, c.ids, 5000)
	c.runUntil("the follower observes", 5000, func() bool {
		st := c.nodes[f].p.Status()
		return st.Role == Observing && st.Established
	})
	c.requireActive(c.ids, z, voters, []int64{f})
	informs := c.sent[MsgInform]
	z1, _ := c.propose(l)
	c.awaitApplied(z1, c.ids, 5000)
	require.Greater(t, c.sent[MsgInform], informs)

	z2 := c.proposeReconfig(l, c.ids, nil)
	c.awaitApplied(z2, c.ids, 5000)
	c.runUntil("the observer follows again", 5000, func() bool {
		st := c.nodes[f].p.Status()
		return st.Role == Following && st.Established
	})
	c.requireActive(c.ids, z2, c.ids, nil)
	require.Positive(t, c.sent[MsgInformAndActivate])
}

// A learner whose active configuration is newer than its leader's refuses
// the leader's NEWLEADER.
func TestLearnerWithLaterConfigRefusesLeader(t *testing.T) {
	c := newReconfigCluster(t, 25, 3, []int64{1, 2, 3}, nil, nil)
	c.crash(3)
	l := c.awaitFollowing([]int64{1, 2}, 5000)
	c.nodes[3].cfg.ConfigVersion = MakeZxid(90, 1)
	c.restart(3)
	for range 400 {
		c.calmStep()
		st := c.nodes[3].p.Status()
		require.False(t, st.Established && st.Leader == l, "server 3 synced with a leader of an older configuration")
	}
	require.Contains(t, c.nodes[3].p.Status().Why, "later activated configuration")
}

// Restarted servers keep the configuration activated before (the dynamic
// config file) and take the pending one from their log.
func TestReconfigSurvivesRestarts(t *testing.T) {
	c := newReconfigCluster(t, 26, 4, []int64{1, 2, 3}, nil, nil)
	l := c.awaitFollowing(c.ids, 8000)
	z := c.proposeReconfig(l, []int64{1, 2, 3, 4}, nil)
	c.awaitApplied(z, c.ids, 5000)
	for _, id := range c.ids {
		c.crash(id)
	}
	for _, id := range c.ids {
		c.restart(id)
	}
	c.requireActive(c.ids, z, []int64{1, 2, 3, 4}, nil)
	l = c.awaitFollowing(c.ids, 10000)
	z2, ok := c.propose(l)
	require.True(t, ok)
	c.awaitApplied(z2, c.ids, 5000)
}

// The first leader of a configuration still at version 0 versions it with
// its NEWLEADER zxid (ZooKeeper's Leader.lead, ZOOKEEPER-1783): NEWLEADER
// carries it, the leader activates it when established and the learners
// at UPTODATE, members unchanged. A configuration already versioned keeps
// its version through the next elections, and without reconfig
// (ReconfigOf nil) the version stays 0.
func TestFirstLeaderVersionsTheInitialConfig(t *testing.T) {
	c := newReconfigCluster(t, 31, 3, []int64{1, 2, 3}, nil, nil)
	var newLeaders []Membership
	c.onSend = func(m Message) {
		if m.Type == MsgNewLeader {
			nl, err := DecodeMembership(m.Payload)
			require.NoError(t, err)
			newLeaders = append(newLeaders, nl)
		}
	}
	l := c.awaitFollowing(c.ids, 8000)
	c.stabilize()
	v := MakeZxid(c.nodes[l].p.hs.CurrentEpoch, 0)
	require.NotZero(t, v)
	requireVersioned(t, c, c.ids, v)
	require.NotEmpty(t, newLeaders)
	for _, nl := range newLeaders {
		require.Equal(t, v, nl.Version, "NEWLEADER's configuration version")
		require.Equal(t, []int64{1, 2, 3}, nl.Voters)
		require.Empty(t, nl.Observers)
	}

	// The next leader keeps that version.
	c.crash(l)
	var rest []int64
	for _, id := range c.ids {
		if id != l {
			rest = append(rest, id)
		}
	}
	l2 := c.awaitFollowing(rest, 8000)
	require.NotEqual(t, l, l2)
	c.stabilize()
	requireVersioned(t, c, rest, v)

	plain := newCluster(t, clusterOpts{voters: 3, seed: 31})
	pl := plain.awaitFollowing(plain.ids, 8000)
	plain.stabilize()
	require.NotZero(t, plain.nodes[pl].p.hs.CurrentEpoch)
	c.onSend = nil
	requireVersioned(t, plain, plain.ids, 0)
}

// requireVersioned checks that ids have voters 1..3 and no observers
// active, at version v.
func requireVersioned(t *testing.T, c *cluster, ids []int64, v int64) {
	for _, id := range ids {
		a := c.nodes[id].p.ActiveConfig()
		require.Equal(t, v, a.Version, "config version on %d", id)
		require.Equal(t, []int64{1, 2, 3}, a.Voters, "voters on %d", id)
		require.Empty(t, a.Observers, "observers on %d", id)
	}
}

// A learner whose log ends in a reconfig entry its new leader's history
// lacks (a dead leader's last proposal) and that syncs by SNAP past that
// zxid does not activate the entry's configuration: the snapshot replaces
// the log the entry came from. It keeps its configuration, as ZooKeeper's
// learner does at SNAP, accepts the leader's older one in NEWLEADER and
// adopts it at UPTODATE. Seed 2044 with reconfigs had the learner activate
// it and refuse every NEWLEADER of its leader for good.
func TestSnapDropsPendingConfigOfReplacedLog(t *testing.T) {
	v0 := MakeZxid(1, 0)
	log := []Entry{
		{Zxid: MakeZxid(1, 1), Data: []byte{1}},
		{Zxid: MakeZxid(1, 2), Data: []byte{2}},
		{Zxid: MakeZxid(1, 3), Data: reconfigData([]int64{1, 2, 3, 4}, nil)},
	}
	f := NewPeer(Config{ID: 2, Voters: []int64{1, 2, 3}, ConfigVersion: v0, ReconfigOf: testReconfigOf},
		Initial{HardState: HardState{AcceptedEpoch: 1, CurrentEpoch: 1}, Log: log}, &testApp{})
	f.Ready()
	f.Advance()
	_, pending := f.PendingConfig()
	require.True(t, pending, "the log's reconfig entry is pending")
	followServer1(t, f)
	f.Step(Message{Type: MsgLeaderInfo, From: 1, To: 2, Epoch: 2})
	f.Ready()
	f.Advance()

	leaderConfig := newMembership(v0, []int64{1, 2, 3}, nil)
	f.Step(Message{Type: MsgSnap, From: 1, To: 2, Epoch: 2, Zxid: MakeZxid(2, 4), Snapshot: SnapshotBytes([]byte("leader state"))})
	f.Step(Message{Type: MsgNewLeader, From: 1, To: 2, Epoch: 2, Zxid: MakeZxid(2, 0), Payload: AppendMembership(nil, leaderConfig)})
	st := f.Status()
	require.Equal(t, Following, st.Role, "why: %s", st.Why)
	require.Equal(t, v0, f.ActiveConfig().Version)
	_, pending = f.PendingConfig()
	require.False(t, pending, "the replaced log's reconfig entry is still pending")
	rd := f.Ready()
	require.Equal(t, []Message{{Type: MsgAck, From: 2, To: 1, Epoch: 2, Zxid: MakeZxid(2, 0)}}, msgsOf(rd, MsgAck))
	f.Advance()

	f.Step(Message{Type: MsgUpToDate, From: 1, To: 2, Epoch: 2, Zxid: MakeZxid(2, 4)})
	st = f.Status()
	require.Equal(t, Following, st.Role, "why: %s", st.Why)
	require.True(t, st.Established)
	a := f.ActiveConfig()
	require.Equal(t, v0, a.Version)
	require.Equal(t, []int64{1, 2, 3}, a.Voters)
}

// zooKeeperNotifications strips the pending configuration from every
// notification, as netstub/zklink does between ZooKeeper-like servers:
// ZooKeeper's notification carries the committed configuration only.
func zooKeeperNotifications(m Message) Message {
	if m.Type != MsgNotification || len(m.Payload) == 0 {
		return m
	}
	active, _, err := DecodeConfigs(m.Payload)
	if err != nil {
		panic(err)
	}
	m.Payload = AppendConfigs(nil, active, nil)
	return m
}

// A reconfig promoting observer 4 is pending on the leader and one
// follower only; the other follower dies for good and the leader restarts.
// The pending configuration's quorum needs 4, which, its notifications
// carrying no pending configuration, cannot learn that it is a voter: it
// must pass on the voters' vote for them to decide (relayVote), and the new
// leader must count its NEWLEADER ack as an observer's (liveVoter). The
// simulator's seed 16 with --reconfig found the voters waiting for its vote
// forever.
func TestPendingPromotionOfUninformedObserver(t *testing.T) {
	c := newReconfigCluster(t, 16, 4, []int64{1, 2, 3}, []int64{4}, nil)
	c.rewrite = zooKeeperNotifications
	l := c.awaitFollowing(c.ids, 8000)
	c.stabilize()
	var others []int64
	for _, id := range []int64{1, 2, 3} {
		if id != l {
			others = append(others, id)
		}
	}
	gone, kept := others[0], others[1]
	c.freezeLink(l, gone)
	z := c.proposeReconfig(l, []int64{1, 2, 3, 4}, nil)
	c.stabilize()
	for _, id := range []int64{l, kept} {
		pend, ok := c.nodes[id].p.PendingConfig()
		require.True(t, ok, "server %d", id)
		require.Equal(t, z, pend.Version, "server %d", id)
	}
	_, ok := c.nodes[4].p.PendingConfig()
	require.False(t, ok, "the observer got the reconfig proposal")

	c.crash(gone)
	c.crash(l)
	c.healAll()
	c.restart(l)
	nl := c.awaitFollowing([]int64{l, kept, 4}, 20000)
	c.stabilize()
	require.NotEqual(t, gone, nl)
	for _, id := range []int64{l, kept, 4} {
		require.True(t, c.applied(id, z), "server %d applied the promotion", id)
	}
	c.requireActive([]int64{l, kept, 4}, z, []int64{1, 2, 3, 4}, nil)
}

// A server holding a reconfig entry of an epoch a newer leader established
// without it (a leader back from a stall proposed it in its dead epoch)
// joins that leader, whether or not the leader's zxid has passed the
// entry's since: the entry is in no history of the newer epoch, so never
// committed, and a leader whose history held it would count its
// configuration itself. The simulator's seed 244 with --reconfig (3
// voters, 1 observer) found such a server, the only one holding a pending
// configuration whose voters were the other two, refusing both of them
// while each led in turn with its vote and waited for it as a follower:
// no leader after 60 s of calm.
func TestJoinLeaderPastDeadEpochReconfig(t *testing.T) {
	c1 := newMembership(MakeZxid(1, 0), []int64{1, 2, 3}, []int64{4})
	dead := MakeZxid(6, 0x6d)
	app := &testApp{}
	p := NewPeer(Config{
		ID: 3, Voters: c1.Voters, Observers: c1.Observers, ConfigVersion: c1.Version,
		ElectionTicks: 4, ReconfigOf: testReconfigOf, Seed: 244,
	}, Initial{
		HardState: HardState{AcceptedEpoch: 6, CurrentEpoch: 6},
		Log: []Entry{
			{Zxid: MakeZxid(6, 0x6c), Data: []byte("x")},
			{Zxid: dead, Data: reconfigData([]int64{1, 2}, []int64{3, 4})},
		},
	}, app)
	pend, ok := p.PendingConfig()
	require.True(t, ok)
	require.Equal(t, dead, pend.Version)
	p.Ready()
	p.Advance()
	round := p.elec.round

	// Server 1 leads epoch 7 past the dead entry, with this server's
	// vote of the round; server 2 leads on its own.
	lead := Vote{Leader: 1, Zxid: MakeZxid(7, 3), PeerEpoch: 7, Round: round}
	notify := func(from int64, v Vote, state Role) {
		v.State = state
		p.Step(Message{Type: MsgNotification, From: from, To: 3, Vote: v, Payload: AppendConfigs(nil, c1, nil)})
	}
	notify(1, lead, Looking)
	require.Equal(t, Looking, p.Status().Role)
	require.Equal(t, int64(1), p.elec.vote.Leader)
	notify(2, Vote{Leader: 2, Zxid: MakeZxid(7, 3), PeerEpoch: 7, Round: round}, Leading)
	notify(1, lead, Leading)
	st := p.Status()
	require.Equal(t, Following, st.Role, "joins server 1's epoch 7")
	require.Equal(t, int64(1), st.Leader)
}

// A pending configuration learned from a notification, whose reconfig
// entry is not in this server's log, is not activated when a sync's COMMIT
// passes its version: the leader's history, which the learner now holds,
// lacks the entry, so it was never committed. The learner activated it and
// then refused the leader's NEWLEADER as older than its own configuration,
// forever (seed 352 with --reconfig, 5 voters, 1 observer: a stalled voter
// took a retired leader's pending configuration from its held
// notifications).
func TestLearnedPendingNotActivatedWithoutItsEntry(t *testing.T) {
	c0 := newMembership(MakeZxid(6, 5), []int64{1, 3, 5}, nil)
	learned := newMembership(MakeZxid(7, 6), []int64{1, 3}, nil)
	p := NewPeer(Config{
		ID: 1, Voters: c0.Voters, ConfigVersion: c0.Version,
		ElectionTicks: 4, ReconfigOf: testReconfigOf, Seed: 352,
	}, Initial{
		HardState: HardState{AcceptedEpoch: 7, CurrentEpoch: 7},
		Log:       []Entry{{Zxid: MakeZxid(7, 5), Data: []byte("x")}},
	}, &testApp{})
	p.Ready()
	p.Advance()
	step := func(m Message) {
		m.To = 1
		p.Step(m)
		if p.HasReady() {
			p.Ready()
			p.Advance()
		}
	}
	// Server 5 tells of the configuration it proposed (it was not
	// committed, and server 5 lost it since).
	step(Message{Type: MsgNotification, From: 5, Vote: Vote{Leader: 5, Zxid: learned.Version, PeerEpoch: 7, Round: p.elec.round, State: Looking},
		Payload: AppendConfigs(nil, c0, &learned)})
	pend, ok := p.PendingConfig()
	require.True(t, ok)
	require.Equal(t, learned.Version, pend.Version)

	// Server 5 leads epoch 10 with server 3, from a history without it.
	lead := Vote{Leader: 5, Zxid: MakeZxid(7, 5), PeerEpoch: 10, Round: p.elec.round}
	for _, from := range []int64{3, 5} {
		v := lead
		v.State = Following
		if from == 5 {
			v.State = Leading
		}
		step(Message{Type: MsgNotification, From: from, Vote: v, Payload: AppendConfigs(nil, c0, nil)})
	}
	require.Equal(t, Following, p.Status().Role)
	require.Equal(t, int64(5), p.Status().Leader)
	step(Message{Type: MsgLeaderInfo, From: 5, Epoch: 10})
	step(Message{Type: MsgDiff, From: 5, Epoch: 10, Zxid: MakeZxid(10, 1)})
	step(Message{Type: MsgProposal, From: 5, Epoch: 10, Entry: Entry{Zxid: MakeZxid(10, 1), Data: []byte("y")}})
	step(Message{Type: MsgCommit, From: 5, Epoch: 10, Zxid: MakeZxid(10, 1)})
	require.Equal(t, c0.Version, p.ActiveConfig().Version, "activated a configuration its history lacks")
	step(Message{Type: MsgNewLeader, From: 5, Epoch: 10, Zxid: MakeZxid(10, 0), Payload: AppendMembership(nil, c0)})
	st := p.Status()
	require.Equal(t, Following, st.Role, "refused the leader: %s", st.Why)
	_, ok = p.PendingConfig()
	require.False(t, ok)
}

// A joiner outside every configuration in play learns in the role its own
// configuration gave it, as ZooKeeper's learnerType: started as a
// participant it follows without a vote, so the reconfig that adds it
// finds it a synced follower (QuorumSynced, ZooKeeper's isQuorumSynced,
// counts followers only) and can pass with a member down; started as an
// observer it observes, and counts nowhere.
func TestJoinerSyncsAsNonVotingFollower(t *testing.T) {
	for _, tc := range []struct {
		name     string
		asObs    []int64
		role     Role
		quorumOK bool
	}{
		{"participant", nil, Following, true},
		{"observer", []int64{4}, Observing, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newReconfigCluster(t, 23, 4, []int64{1, 2, 3}, nil, tc.asObs)
			l := c.awaitFollowing(c.ids, 8000)
			require.NotEqual(t, int64(4), l)
			var down int64
			for _, id := range []int64{1, 2, 3} {
				if id != l {
					down = id
					break
				}
			}
			c.crash(down)
			live := slices.DeleteFunc(slices.Clone(c.ids), func(id int64) bool { return id == down })
			z0, ok := c.propose(l)
			require.True(t, ok)
			c.awaitApplied(z0, live, 5000)

			st := c.nodes[4].p.Status()
			require.Equal(t, tc.role, st.Role, "the joiner's role")
			require.Equal(t, l, st.Leader)
			ls := c.nodes[l].p.Status()
			require.Contains(t, ls.Followers, int64(4))
			if tc.role == Following {
				require.Equal(t, 1, ls.SyncedNonVoting, "the joiner is a non-voting follower")
			}
			next := newMembership(0, []int64{1, 2, 3, 4}, nil)
			require.Equal(t, tc.quorumOK, c.nodes[l].p.QuorumSynced(next),
				"the leader, one voter and the joiner as a synced quorum of {1,2,3,4}")
			if !tc.quorumOK {
				return
			}
			z := c.proposeReconfig(l, []int64{1, 2, 3, 4}, nil)
			c.awaitApplied(z, live, 5000)
			c.runUntil("activation on the live servers", 3000, func() bool {
				for _, id := range live {
					if c.nodes[id].p.ActiveConfig().Version != z {
						return false
					}
				}
				return true
			})
			c.requireActive(live, z, []int64{1, 2, 3, 4}, nil)
			// Its acks count now: the leader, the other old voter and 4
			// commit with the crashed voter still down.
			l = c.awaitFollowing(live, 5000)
			z2, ok := c.propose(l)
			require.True(t, ok)
			c.awaitApplied(z2, live, 5000)
		})
	}
}
