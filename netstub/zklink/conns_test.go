package zklink

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// Conns keeps zktcp's connection rules: a FOLLOWERINFO opens a new learner
// connection, a leader accepts while Looking or Leading, role changes close
// what no longer fits.
func TestConnsRules(t *testing.T) {
	// A learner: each Dial replaces the previous connection.
	l := NewConns(1, nil)
	c1, old := l.Dial(3)
	require.Nil(t, old)
	require.Equal(t, LearnerSide, c1.Link.Side())
	require.Same(t, c1, l.Route(3))
	require.Nil(t, l.Route(2))
	c2, old := l.Dial(3)
	require.Same(t, c1, old)
	require.NotEqual(t, c1.ID, c2.ID)
	require.False(t, l.Has(c1))
	require.Empty(t, l.SetRole(zab.Following, 3), "following its own leader keeps the link")
	require.Equal(t, []*Conn{c2}, l.SetRole(zab.Following, 2), "another leader closes it")
	require.Nil(t, l.Route(3))

	// A leader: accepts while Looking or Leading, one connection per
	// learner, in id order; a learner that starts over replaces its own.
	ld := NewConns(3, []byte("cfg"))
	a2, old := ld.Accept(2)
	require.NotNil(t, a2)
	require.Nil(t, old)
	a1, _ := ld.Accept(1)
	require.Equal(t, LeaderSide, a1.Link.Side())
	require.Empty(t, ld.SetRole(zab.Leading, 3))
	b2, old := ld.Accept(2)
	require.Same(t, a2, old)
	require.Equal(t, []*Conn{a1, b2}, ld.All())
	ld.Drop(a1)
	require.Equal(t, []*Conn{b2}, ld.All())
	require.Equal(t, []*Conn{b2}, ld.SetRole(zab.Looking, 0), "leaving Leading closes the learners' links")
	require.True(t, ld.Accepting())
	require.Empty(t, ld.SetRole(zab.Following, 1))
	c, _ := ld.Accept(2)
	require.Nil(t, c, "a follower refuses learners")
}

// AcceptFirst registers a learner's connection only once its first packet
// decodes: a refused FOLLOWERINFO leaves the learner's previous connection
// in place, as zktcp always did.
func TestConnsAcceptFirst(t *testing.T) {
	info := func(li quorum.LearnerInfo) quorum.Packet { return quorum.NewLearnerInfo(false, 4, li) }
	ld := NewConns(1, []byte("cfg"))
	require.Empty(t, ld.SetRole(zab.Leading, 1))
	a, old, msgs, err := ld.AcceptFirst(2, info(quorum.LearnerInfo{Sid: 2, ProtocolVersion: quorum.LearnerProtocol}))
	require.NoError(t, err)
	require.Nil(t, old)
	require.Equal(t, []zab.Message{{Type: zab.MsgFollowerInfo, From: 2, To: 1, Epoch: 4}}, msgs)
	require.Same(t, a, ld.Route(2))

	c, old, msgs, err := ld.AcceptFirst(2, info(quorum.LearnerInfo{Sid: 2, ProtocolVersion: 1}))
	require.ErrorIs(t, err, quorum.ErrVersion)
	require.Nil(t, c)
	require.Nil(t, old)
	require.Nil(t, msgs)
	require.Equal(t, []*Conn{a}, ld.All(), "a refused first packet replaces nothing")

	b, old, _, err := ld.AcceptFirst(2, info(quorum.LearnerInfo{Sid: 2, ProtocolVersion: quorum.LearnerProtocol}))
	require.NoError(t, err)
	require.Same(t, a, old, "the learner started over")
	require.Equal(t, []*Conn{b}, ld.All())

	require.Equal(t, []*Conn{b}, ld.SetRole(zab.Following, 3))
	require.Equal(t, zab.Following, ld.Role())
	c, _, _, err = ld.AcceptFirst(2, info(quorum.LearnerInfo{Sid: 2, ProtocolVersion: quorum.LearnerProtocol}))
	require.NoError(t, err)
	require.Nil(t, c, "a follower refuses learners")
	require.Empty(t, ld.All())
}
