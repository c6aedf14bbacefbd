package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/server"
)

// TestEnsembleOIDCAndQuotas runs oidc identities and enforced quotas on a
// 3-server ensemble: a token verified by a follower carries its identity
// into the writes it forwards to the leader, and the quota stats, kept as
// txns apply, read the same on every server.
func TestEnsembleOIDCAndQuotas(t *testing.T) {
	f, oc := newOIDCIssuers(t, time.Minute)
	ms := startEnsembleWith(t, 3, func(cfg *server.Config) {
		cfg.Security.OIDC = oc
		cfg.Security.EnforceQuota = true
	})
	leader := waitServing(t, ms)
	var follower *member
	for _, m := range ms {
		if m != leader {
			follower = m
			break
		}
	}

	owner := connect(t, follower.addr)
	require.NoError(t, owner.AddAuth("oidc", []byte(f.k8sToken(t, "system:serviceaccount:apps:owner", time.Hour, nil))))
	_, err := owner.Create("/team", []byte("abc"), 0, []zk.ACL{{Perms: zk.PermAll, Scheme: "oidc", ID: "system:serviceaccount:apps:owner"}})
	require.NoError(t, err, "the follower's verified identity is judged by the leader")
	stranger := connect(t, leader.addr)
	_, err = stranger.Set("/team", []byte("x"), -1)
	require.ErrorIs(t, err, zk.ErrNoAuth)

	// setquota as zkCli does it, through the leader: at most 3 nodes.
	admin := connect(t, leader.addr)
	require.NoError(t, admin.AddAuth("oidc", []byte(f.k8sToken(t, "system:serviceaccount:ops:root", time.Hour, nil))))
	_, err = admin.Create("/zookeeper/quota/team", nil, 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	_, err = admin.Create("/zookeeper/quota/team/zookeeper_limits", []byte("count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=3"), 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	_, err = admin.Create("/zookeeper/quota/team/zookeeper_stats", []byte("count=0,bytes=0"), 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)

	// Writes through the follower count and are refused past the limit.
	for i := 0; i < 2; i++ {
		_, err = owner.Create(fmt.Sprintf("/team/n%d", i), []byte("12"), 0, zk.WorldACL(zk.PermAll))
		require.NoError(t, err)
	}
	_, err = owner.Create("/team/n2", nil, 0, zk.WorldACL(zk.PermAll))
	require.Error(t, err)
	require.Contains(t, err.Error(), "-125")

	for _, m := range ms {
		c := connect(t, m.addr)
		_, err := c.Sync("/")
		require.NoError(t, err)
		data, _, err := c.Get("/zookeeper/quota/team/zookeeper_stats")
		require.NoError(t, err)
		require.Equal(t, "count=3,bytes=7", string(data), "server %d", m.id)
	}
}
