package server_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/server"
)

// TestEnsembleObserverServesAndNeverVotes: with three voters and an
// observer, the observer serves reads, forwards writes and says
// "Mode: observer"; with two voters gone the remaining voter and the
// observer are no quorum, so nobody serves writes.
func TestEnsembleObserverServesAndNeverVotes(t *testing.T) {
	ms := startEnsembleWith(t, 4, func(c *server.Config) {
		c.Servers[4] = server.ServerSpec{ID: 4, Host: "127.0.0.1", Observer: true}
	})
	leader := waitServing(t, ms)
	obs := ms[3]
	require.Equal(t, "observer", mode(t, obs.addr))
	require.NotEqual(t, obs, leader)
	require.Contains(t, fourLetter(t, leader.addr, "mntr"), "zk_synced_observers\t1\n")
	require.Contains(t, fourLetter(t, leader.addr, "mntr"), "zk_quorum_size\t3\n", "the observer does not count")

	oc := connect(t, obs.addr)
	mustCreate(t, oc, "/via-observer", []byte("o"), 0)
	var other *member
	for _, m := range ms[:3] {
		if m != leader {
			other = m
			break
		}
	}
	vc := connect(t, other.addr)
	_, err := vc.Sync("/via-observer")
	require.NoError(t, err)
	data, _, err := vc.Get("/via-observer")
	require.NoError(t, err)
	require.Equal(t, []byte("o"), data, "a write through the observer reached the voters")
	mustCreate(t, vc, "/via-voter", nil, 0)
	_, err = oc.Sync("/via-voter")
	require.NoError(t, err)
	ok, _, err := oc.Exists("/via-voter")
	require.NoError(t, err)
	require.True(t, ok, "the observer learns committed writes")
	oc.Close()
	vc.Close()

	// Two voters stop: one voter and the observer are not a quorum.
	var stopped int
	for _, m := range ms[:3] {
		if m != other && stopped < 2 {
			m.stop(t)
			stopped++
		}
	}
	waitFor(t, "the remaining voter and the observer stop serving", func() bool {
		return mode(t, other.addr) == "not serving" && mode(t, obs.addr) == "not serving"
	})
}
