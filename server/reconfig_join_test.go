package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"
)

// TestReconfigAddsAServerWhileAFollowerIsDown: with one of three servers
// down, adding a fourth needs it synced, since the new configuration's
// quorum (three of four) must be synced before the reconfig is proposed.
// As in ZooKeeper, the joiner, started with a config naming the members
// and itself, syncs first as a learner without a vote: the members keep
// its election connections though it is in none of their configurations,
// answer its notifications, and the leader accepts its FOLLOWERINFO. The
// reconfig is retried while it answers NewConfigNoQuorum (-13, until the
// joiner synced) and then succeeds; writes go on and the joiner serves
// them; the stopped follower comes back and catches up. mntr counts the
// joiner as ZooKeeper's does. Before, the
// members closed the joiner's connections ("server not in the config")
// and the reconfig answered -13 forever.
func TestReconfigAddsAServerWhileAFollowerIsDown(t *testing.T) {
	e := newReconfigEnsemble(t, 4)
	for id := 1; id <= 3; id++ {
		e.start(id, []int{1, 2, 3})
	}
	leader := waitServing(t, []*member{e.ms[1], e.ms[2], e.ms[3]})
	down, live := 0, 0
	for id := 1; id <= 3; id++ {
		switch {
		case id == leader.id:
		case down == 0:
			down = id
		default:
			live = id
		}
	}
	e.ms[down].stop(t)
	c := connect(t, e.addr(leader.id))
	mustCreate(t, c, "/before-join", nil, 0)

	e.start(4, []int{1, 2, 3, 4})
	// Server 4 syncs as a follower without a vote; mntr counts it as
	// ZooKeeper's does (a synced follower, a non-voting one).
	waitMntr(t, e.addr(leader.id), "zk_quorum_size\t3\n", "zk_synced_followers\t2\n",
		"zk_synced_non_voting_followers\t1\n", "zk_synced_observers\t0\n")
	admin := e.superConn(live)
	var st *zk.Stat
	deadline := time.Now().Add(60 * time.Second)
	tries := 0
	for {
		var err error
		tries++
		st, err = admin.IncrementalReconfig([]string{e.line(4, "participant")}, nil, -1)
		if err == nil {
			break
		}
		require.EqualError(t, err, "unknown error: -13", "NewConfigNoQuorum until server 4 synced, nothing else")
		if time.Now().After(deadline) {
			t.Fatalf("the reconfig adding server 4 still answers NewConfigNoQuorum after %d tries", tries)
		}
		time.Sleep(100 * time.Millisecond) // polling the reconfig, not timing
	}
	t.Logf("the reconfig adding server 4 succeeded after %d tries", tries)
	data := e.waitConfig([]int{leader.id, live, 4}, st.Mzxid)
	require.Equal(t, fmt.Sprintf("%s\n%s\n%s\n%s\nversion=%x", e.line(1, "participant"), e.line(2, "participant"),
		e.line(3, "participant"), e.line(4, "participant"), st.Mzxid), data)
	e.waitMode(4, "follower")
	waitMntr(t, e.addr(leader.id), "zk_quorum_size\t4\n", "zk_synced_followers\t2\n", "zk_synced_non_voting_followers\t0\n")

	// Writes need server 4 now (three of four): they go on, and it
	// serves them.
	mustCreate(t, c, "/after-join", nil, 0)
	c4 := connect(t, e.addr(4))
	_, err := c4.Sync("/")
	require.NoError(t, err)
	for _, p := range []string{"/before-join", "/after-join"} {
		ok, _, err := c4.Exists(p)
		require.NoError(t, err)
		require.True(t, ok, "server 4 serves %s", p)
	}
	mustCreate(t, c4, "/through-4", nil, 0)

	// The follower that was down comes back, learns the configuration
	// and catches up.
	e.load(down)
	e.waitConfig([]int{down}, st.Mzxid)
	e.waitMode(down, "follower")
	waitMntr(t, e.addr(leader.id), "zk_synced_followers\t3\n")
	cd := connect(t, e.addr(down))
	_, err = cd.Sync("/")
	require.NoError(t, err)
	for _, p := range []string{"/before-join", "/after-join", "/through-4"} {
		ok, _, err := cd.Exists(p)
		require.NoError(t, err)
		require.True(t, ok, "server %d serves %s after its restart", down, p)
	}
}
