package zktcp

import (
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/netstub/zklink"
)

// A server that knows only part of the ensemble (restarted from an older
// dynamic file while server 1 joined) learns the newer configuration's
// members from a notification that carries it: LearnConfig gets the config
// string once per newer version, the transport links to the members it
// names, and from then on server 1's notifications reach it and its own
// reach server 1, both ways across the knock-and-connect-back rule. A
// notification at or below the newest version seen teaches nothing, and
// an activation (SetPeers) lets the next newer one teach again.
func TestZKTCPLearnsTheMembersOfANewerConfig(t *testing.T) {
	var (
		mu      sync.Mutex
		addrs   = map[int64]Peer{}
		learned []string
	)
	book := func(id int64) (zklink.Member, bool) {
		mu.Lock()
		defer mu.Unlock()
		p, ok := addrs[id]
		if !ok {
			return zklink.Member{}, false
		}
		host, eport, _ := net.SplitHostPort(p.ElectionAddr)
		_, qport, _ := net.SplitHostPort(p.QuorumAddr)
		e, _ := strconv.Atoi(eport)
		q, _ := strconv.Atoi(qport)
		return zklink.Member{ID: id, Host: host, QuorumPort: q, ElectionPort: e}, true
	}
	ts := clusterWith(t, 3, func(c *Config) {
		c.Book = book
		if c.ID == 3 {
			c.LearnConfig = func(config []byte) (map[int64]Peer, error) {
				m, err := zklink.ParseConfig(config)
				if err != nil {
					return nil, err
				}
				mu.Lock()
				defer mu.Unlock()
				learned = append(learned, string(config))
				out := map[int64]Peer{}
				for _, id := range m.Voters {
					out[id] = addrs[id]
				}
				return out, nil
			}
		}
	})
	mu.Lock()
	for _, tr := range ts {
		addrs[tr.id] = Peer{QuorumAddr: tr.QuorumAddr().String(), ElectionAddr: tr.ElectionAddr().String()}
	}
	mu.Unlock()
	s1, s2, s3 := ts[0], ts[1], ts[2]
	old := zab.Membership{Version: zab.MakeZxid(2, 0x10b), Voters: []int64{2, 3}}
	newer := zab.Membership{Version: zab.MakeZxid(5, 0x25), Voters: []int64{1, 2, 3}}
	s3.SetPeers(map[int64]Peer{2: addrs[2]})
	s3.SetConfigVersion(old.Version)
	learnedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(learned)
	}

	// Server 1's notification reaches server 3 only through the
	// connect-back to the address of its knock (1 < 3): server 3 has none
	// configured for it.
	round := int64(1)
	vote := func(from int64, c zab.Membership) zab.Message {
		round++
		return zab.Message{Type: zab.MsgNotification, Vote: zab.Vote{Leader: from, Zxid: zab.MakeZxid(5, 1), PeerEpoch: 5,
			Round: round, State: zab.Looking}, Payload: zab.AppendConfigs(nil, c, nil)}
	}
	fromOne := vote(1, newer)
	fromOne.To = 3
	s1.Send(fromOne)
	// waitNote waits for from's notification of round r (dropping a
	// peer's links tells the engine, MsgLinkDown).
	waitNote := func(tr *Transport, from int64, r int64) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case m := <-tr.Recv():
				if m.Type == zab.MsgNotification && m.From == from && m.Vote.Round == r {
					return
				}
			case <-deadline:
				t.Fatalf("server %d: no notification of round %d from %d within 10s", tr.id, r, from)
			}
		}
	}
	// Server 1 is outside server 3's peer set: what it says reaches the
	// engine, but it teaches the transport no addresses.
	waitNote(s3, 1, fromOne.Vote.Round)
	require.Equal(t, 0, learnedCount(), "a server outside the peer set teaches nothing")

	// Server 2's notification carries the newer configuration.
	n := vote(2, newer)
	n.To = 3
	s2.Send(n)
	waitNote(s3, 2, n.Vote.Round)
	require.Equal(t, 1, learnedCount())
	mu.Lock()
	got, err := zklink.ParseConfig([]byte(learned[0]))
	mu.Unlock()
	require.NoError(t, err)
	require.Equal(t, newer, got)

	// Now server 3 reaches server 1 and hears from it.
	toOne := vote(3, newer)
	toOne.To = 1
	s3.Send(toOne)
	waitNote(s1, 3, toOne.Vote.Round)
	fromOne = vote(1, newer)
	fromOne.To = 3
	s1.Send(fromOne)
	waitNote(s3, 1, fromOne.Vote.Round)
	require.Equal(t, 1, learnedCount(), "a version already seen teaches nothing")

	// An activated configuration replaces the peers; the next notification
	// newer than it teaches again.
	s3.SetPeers(map[int64]Peer{2: addrs[2]})
	n = vote(2, newer)
	n.To = 3
	s2.Send(n)
	waitNote(s3, 2, n.Vote.Round)
	require.Equal(t, 2, learnedCount())
	older := vote(2, old)
	older.To = 3
	s2.Send(older)
	waitNote(s3, 2, older.Vote.Round)
	require.Equal(t, 2, learnedCount(), "an older configuration teaches nothing")
}
