package quorum_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// The tests in this file check the facts the "one protocol" design of
// docs/ZAB.md rests on: where a zabkeeper peer can announce itself in the
// handshake so that a ZooKeeper 3.8 peer ignores it, and that a txn only
// zabkeeper gives meaning to is a no-op for a ZooKeeper follower.

// helloExt is the hello a zabkeeper peer puts after a handshake packet's
// ZooKeeper fields (quorum.Hello: magic "zkh1", version, every capability
// bit this version has, a nonce), byte for byte what netstub/zklink sends.
func helloExt() []byte {
	return quorum.Hello{Version: quorum.HelloVersion, Caps: 0x7, Nonce: 0x0123456789abcdef}.Append(nil)
}

// timeoutNow is zabkeeper's TIMEOUTNOW as a leader sends it, here sent
// where it must never go (to or from a ZooKeeper server) to show that a
// ZooKeeper peer survives the mistake.
func timeoutNow(lastZxid int64) quorum.Packet { return quorum.NewTimeoutNow(lastZxid, goSid, 1) }

// TestInteropLearnerInfoExtension: a ZooKeeper 3.8 leader takes a Go
// follower whose FOLLOWERINFO carries bytes after LearnerInfo's 20 (and an
// ACKEPOCH with bytes after its int32), and a Go observer whose
// OBSERVERINFO carries them and a protocol version above 0x10000
// (LearnerHandler.run reads 8, 4 and 8 bytes and compares the version only
// with < 0x10000). ZooKeeper can lead only with the follower's vote and
// commit only with its ACK, so the client's write returning proves the
// follower was taken; the observer gets its INFORM.
func TestInteropLearnerInfoExtension(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Apache ZooKeeper")
	}
	v := startTwoVoters(t, nil)
	zkS := v.zk
	vote := v.readVote(t)
	for vote.State != quorum.Looking {
		vote = v.readVote(t)
	}
	v.vote(t, quorum.Notification{State: quorum.Looking, Leader: vote.Leader, Zxid: vote.Zxid, ElectionEpoch: vote.ElectionEpoch,
		PeerEpoch: vote.PeerEpoch, Version: quorum.NotificationVersion, Config: vote.Config})

	hello, ok := quorum.DecodeHello(helloExt())
	require.True(t, ok)
	var qc net.Conn
	var err error
	require.Eventually(t, func() bool {
		qc, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", zkS.quorumPort))
		return err == nil
	}, 30*time.Second, 100*time.Millisecond, "ZooKeeper did not start leading after our vote")
	defer qc.Close()
	f := &observerConn{t: t, conn: qc, r: bufio.NewReader(qc), rec: &bytes.Buffer{}}
	fi := quorum.NewLearnerInfoHello(false, 0, quorum.LearnerInfo{Sid: goSid, ProtocolVersion: quorum.LearnerProtocol}, hello)
	require.Equal(t, helloExt(), fi.Data[20:], "the hello zklink sends")
	f.send(fi)
	li := f.next()
	newEpoch, _, err := quorum.DecodeLeaderInfo(&li)
	require.NoError(t, err)
	require.Equal(t, int64(1), newEpoch)
	ae := quorum.NewAckEpoch(0, 0)
	ae.Data = append(ae.Data, helloExt()...)
	f.send(ae)
	start := f.next()
	require.Equal(t, quorum.Diff, start.Type, "%s", start)
	f.syncToUpToDate(newEpoch)
	waitMode(t, zkS.clientPort, "leader", "ZooKeeper leads with the extended FOLLOWERINFO's vote and NEWLEADER ACK")

	// The observer (sid 100, not in the config: only logged).
	oc, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", zkS.quorumPort))
	require.NoError(t, err)
	defer oc.Close()
	o := &observerConn{t: t, conn: oc, r: bufio.NewReader(oc), rec: &bytes.Buffer{}}
	oi := quorum.NewLearnerInfo(true, 0, quorum.LearnerInfo{Sid: 100, ProtocolVersion: quorum.LearnerProtocol + 1})
	oi.Data = append(oi.Data, helloExt()...)
	o.send(oi)
	oli := o.next()
	oEpoch, version, err := quorum.DecodeLeaderInfo(&oli)
	require.NoError(t, err)
	require.Equal(t, newEpoch, oEpoch)
	require.Equal(t, quorum.LearnerProtocol, version, "ZooKeeper always announces 0x10000")
	require.Len(t, oli.Data, 4, "and nothing after it")
	o.send(quorum.NewAckEpoch(0, 0))
	ostart := o.next()
	require.Contains(t, []quorum.PacketType{quorum.Diff, quorum.Snap}, ostart.Type, "%s", ostart)
	if ostart.Type == quorum.Snap {
		_, err := quorum.CopySnapshotBody(nil, o.r, quorum.SnapLimits{})
		require.NoError(t, err)
	}
	o.syncToUpToDate(newEpoch)

	// A packet of a type ZooKeeper does not define (zabkeeper's
	// TIMEOUTNOW, sent the wrong way) from both learners: logged and
	// ignored (LearnerHandler.run, "unexpected quorum packet"), the links
	// stay.
	f.send(timeoutNow(-1))
	o.send(timeoutNow(-1))

	// A write: the follower ACKs it (the commit needs it), the observer
	// gets its INFORM.
	c, _, err := zk.Connect([]string{fmt.Sprintf("127.0.0.1:%d", zkS.clientPort)}, 20*time.Second,
		zk.WithLogger(quietLog{}), zk.WithLogInfo(false))
	require.NoError(t, err)
	defer c.Close()
	done := make(chan error, 1)
	go func() {
		_, err := c.Create("/ext", []byte("x"), 0, zk.WorldACL(zk.PermAll))
		done <- err
	}()
	var createZxid int64
	for createZxid == 0 {
		p := f.next()
		require.Equal(t, quorum.Proposal, p.Type, "%s", p)
		x, err := decodeTxn(p.Data)
		require.NoError(t, err)
		f.send(quorum.NewAck(p.Zxid))
		cm := f.next()
		require.Equal(t, quorum.Commit, cm.Type)
		require.Equal(t, p.Zxid, cm.Zxid)
		if x.path == "/ext" {
			createZxid = p.Zxid
		}
	}
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("the create did not return after our ACK committed it")
	}
	for {
		p := o.next()
		require.Equal(t, quorum.Inform, p.Type, "%s", p)
		if p.Zxid == createZxid {
			break
		}
	}
	t.Logf("ZooKeeper led a follower and an observer (protocol 0x%x) whose LearnerInfo carried %d extra bytes; /ext at 0x%x",
		quorum.LearnerProtocol+1, len(helloExt()), createZxid)
}

// acceptFollowerWith is twoVoters.acceptFollower with the LEADERINFO given.
func (v *twoVoters) acceptFollowerWith(t *testing.T, epoch int64, config []byte, li quorum.Packet) (*goLeader, int64, int32) {
	_ = v.quorumLn.(*net.TCPListener).SetDeadline(time.Now().Add(30 * time.Second))
	fc, err := v.quorumLn.Accept()
	require.NoError(t, err, "ZooKeeper did not follow us")
	t.Cleanup(func() { fc.Close() })
	l := &goLeader{t: t, fc: fc, fr: bufio.NewReader(fc), epoch: epoch, config: config, acked: map[int64]bool{},
		proposed: map[proto.OpCode]int64{}, touches: map[int64]int32{}}
	_ = fc.SetReadDeadline(time.Now().Add(30 * time.Second))
	fi := l.read()
	info, err := quorum.DecodeLearnerInfo(&fi)
	require.NoError(t, err)
	require.Equal(t, quorum.FollowerInfo, fi.Type)
	require.Len(t, fi.Data, 20, "ZooKeeper's LearnerInfo is 20 bytes, nothing after")
	require.Equal(t, quorum.LearnerProtocol, info.ProtocolVersion)
	l.send(li)
	ae := l.read()
	require.Len(t, ae.Data, 4, "ZooKeeper's ACKEPOCH is an int32, nothing after")
	lastZxid, currentEpoch, err := quorum.DecodeAckEpoch(&ae)
	require.NoError(t, err)
	return l, lastZxid, currentEpoch
}

// TestInteropLeaderInfoExtension: a ZooKeeper 3.8 follower of a Go leader
// whose LEADERINFO carries bytes after the int32 protocol version, and
// separately a protocol version above 0x10000 (Learner.registerWithLeader
// reads one int32 into leaderProtocolVersion, which nothing reads), syncs,
// forwards its client's session and write and serves the result.
func TestInteropLeaderInfoExtension(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Apache ZooKeeper")
	}
	for _, tc := range []struct {
		name    string
		version uint32
	}{
		{"extra-bytes", uint32(quorum.LearnerProtocol)},
		{"version-0x10001", uint32(quorum.LearnerProtocol) + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := startTwoVoters(t, nil)
			config := v.winElection(t, 0)
			const epoch = 1
			li := quorum.NewLeaderInfo(epoch)
			li.Data = binary.BigEndian.AppendUint32(nil, tc.version)
			if tc.name == "extra-bytes" {
				li.Data = append(li.Data, helloExt()...)
			}
			l, lastZxid, currentEpoch := v.acceptFollowerWith(t, epoch, config, li)
			require.Equal(t, int64(0), lastZxid)
			require.Equal(t, int32(0), currentEpoch, "an ack of the new epoch, not -1")
			diff, err := quorum.NewSyncStart(quorum.Diff, 0)
			require.NoError(t, err)
			l.send(diff)
			l.finishSync()

			c, created := createWhenUp(t, v.zk.clientPort, "/led")
			var createErr error
			l.serve("the client's create returning", func() bool {
				select {
				case createErr = <-created:
					return true
				default:
					return false
				}
			})
			require.NoError(t, createErr)
			_, st, err := c.Get("/led")
			require.NoError(t, err)
			require.Equal(t, l.proposed[proto.OpCreate], st.Czxid)

			// A packet of a type ZooKeeper does not define (zabkeeper's
			// TIMEOUTNOW, sent to it by mistake): Follower.processPacket
			// logs "Unknown packet type" and goes on; the next write still
			// goes through.
			l.send(timeoutNow(l.zxid))
			go func() {
				_, err := c.Create("/led2", []byte("ext"), 0, zk.WorldACL(zk.PermAll))
				created <- err
			}()
			l.serve("a create after the unknown packet", func() bool {
				select {
				case createErr = <-created:
					return true
				default:
					return false
				}
			})
			require.NoError(t, createErr)
			t.Logf("ZooKeeper followed a Go leader whose LEADERINFO data was %d bytes (version 0x%x); /led at 0x%x",
				len(li.Data), tc.version, st.Czxid)
		})
	}
}

// createWhenUp connects a go-zk client and, once its session is up (the
// follower may refuse the first connection: it serves a moment after
// UPTODATE, and go-zk fails the requests queued on it), creates path;
// the result arrives on the channel. The caller leads meanwhile.
func createWhenUp(t *testing.T, port int, path string) (*zk.Conn, chan error) {
	t.Helper()
	c, ev, err := zk.Connect([]string{fmt.Sprintf("127.0.0.1:%d", port)}, 20*time.Second,
		zk.WithLogger(quietLog{}), zk.WithLogInfo(false))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	created := make(chan error, 1)
	go func() {
		for e := range ev {
			if e.State == zk.StateHasSession {
				break
			}
		}
		_, err := c.Create(path, []byte("ext"), 0, zk.WorldACL(zk.PermAll))
		created <- err
	}()
	return c, created
}

// serveInjecting is goLeader.serve with a hook: before proposing a
// forwarded request it proposes inject's txn (inject nil or returning nil:
// none), so the request then waits in the follower's CommitProcessor while
// the injected txn commits.
func (l *goLeader) serveInjecting(what string, inject func(f quorum.Forwarded, zxid int64) *tree.Txn, done func() bool) {
	t := l.t
	ticker := time.NewTicker(tickMs / 2 * time.Millisecond)
	defer ticker.Stop()
	deadline := time.After(60 * time.Second)
	for !done() {
		select {
		case <-ticker.C:
			l.send(quorum.NewPing(l.zxid))
		case err := <-l.readErr:
			t.Fatalf("follower link: %v", err)
		case <-deadline:
			t.Fatalf("%s: not within 60s", what)
		case p := <-l.pkts:
			switch p.Type {
			case quorum.Ack:
				if p.Zxid == quorum.MakeZxid(l.epoch, 0) {
					l.upToDateAcked = true
					continue
				}
				require.NotEmpty(t, l.pending, "ACK of 0x%x, nothing proposed", p.Zxid)
				require.Equal(t, l.pending[0], p.Zxid, "ACKs come one per proposal, in order")
				l.pending = l.pending[1:]
				l.acked[p.Zxid] = true
				l.send(quorum.NewCommit(p.Zxid))
			case quorum.Ping:
				touches, err := quorum.DecodeTouches(&p)
				require.NoError(t, err)
				for _, tc := range touches {
					l.touches[tc.Session] = tc.Timeout
				}
			case quorum.Request:
				f, err := quorum.DecodeRequest(&p)
				require.NoError(t, err)
				if inject != nil {
					if x := inject(f, l.zxid+1); x != nil {
						l.zxid++
						l.sendTxn(x)
					}
				}
				l.zxid++
				l.pending = append(l.pending, l.zxid)
				l.proposed[f.Op] = l.zxid
				l.send(propose(t, l.zxid, f))
			default:
				t.Fatalf("unexpected %s from the follower", p)
			}
		}
	}
}

// TestInteropErrorTxnForFollowersSession: a Go leader proposes, for the
// session a ZooKeeper 3.8 follower's client holds, an error txn (type -1)
// with a cxid no client uses (negative) and a zabkeeper extension after
// the TxnDigest, just before each of that client's creates: the create is
// then pending in the follower's CommitProcessor, whose matching is by
// (session, cxid) against its oldest queued write. ZooKeeper applies the
// error txns as remote no-ops (FinalRequestProcessor: no connection, no
// reply) and every create still gets its own answer at its own zxid, the
// session alive: the shape a moveSession carried as an error txn would take.
// The same holds for tree's moveSession as it is marshalled today (a
// createSession of the live session, cxid -1, owner in the extension).
// The control: the same txn with the pending create's own cxid is taken
// for the create's outcome.
func TestInteropErrorTxnForFollowersSession(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Apache ZooKeeper")
	}
	t.Run("negative-cxid", func(t *testing.T) {
		const moveCxid = -12
		r := runErrorTxns(t, func(quorum.Forwarded) int32 { return moveCxid }, 5)
		for i, err := range r.errs {
			require.NoError(t, err, "create %d", i)
			_, st, err := r.c.Get(fmt.Sprintf("/w%d", i))
			require.NoError(t, err)
			require.Equal(t, r.injected[i]+1, st.Czxid, "create %d at its own zxid, right after the error txn", i)
		}
		require.Equal(t, zk.StateHasSession, r.c.State())
		require.Equal(t, r.l.zxid, r.zxid, "the follower applied every txn, the error txns included")
		t.Logf("%d error txns (cxid %d, extension after the TxnDigest) for session 0x%x interleaved with its creates; zxid 0x%x",
			len(r.errs), moveCxid, r.c.SessionID(), r.zxid)
	})
	t.Run("movesession-as-createsession", func(t *testing.T) {
		// tree's moveSession today: a createSession txn of the live
		// session (cxid -1, the engine's internalCxid) with the move flag
		// and the owner in the extension.
		r := runInjected(t, func(f quorum.Forwarded, zxid int64) *tree.Txn {
			return &tree.Txn{Zxid: zxid, SessionID: f.Session, Cxid: -1, Time: time.Now().UnixMilli(),
				Type: tree.OpMoveSession, TimeOut: 20000, Owner: 1}
		}, 3)
		for i, err := range r.errs {
			require.NoError(t, err, "create %d", i)
			_, st, err := r.c.Get(fmt.Sprintf("/w%d", i))
			require.NoError(t, err)
			require.Equal(t, r.injected[i]+1, st.Czxid, "create %d at its own zxid", i)
		}
		require.Equal(t, zk.StateHasSession, r.c.State())
		require.Equal(t, r.l.zxid, r.zxid)
		t.Logf("%d moveSession txns (createSession + extension, cxid -1) for session 0x%x interleaved with its creates; zxid 0x%x",
			len(r.errs), r.c.SessionID(), r.zxid)
	})
	t.Run("control-client-cxid", func(t *testing.T) {
		r := runErrorTxns(t, func(f quorum.Forwarded) int32 { return f.Cxid }, 1)
		t.Logf("an error txn with the pending create's cxid: the create returned %v", r.errs[0])
		require.Error(t, r.errs[0], "the error txn was matched to the client's pending create")
	})
}

type errorTxnRun struct {
	l        *goLeader
	c        *zk.Conn
	errs     []error
	injected []int64
	zxid     int64 // the follower's, after the writes
}

// runErrorTxns leads a ZooKeeper follower whose client makes writes
// creates one after the other, each preceded by an error txn of the
// client's session with the cxid given.
func runErrorTxns(t *testing.T, cxidFor func(quorum.Forwarded) int32, writes int) errorTxnRun {
	return runInjected(t, func(f quorum.Forwarded, zxid int64) *tree.Txn {
		// An error(0) txn with the extension, as tree marshals our sync.
		return &tree.Txn{Zxid: zxid, SessionID: f.Session, Cxid: cxidFor(f), Time: time.Now().UnixMilli(),
			Type: proto.OpSync, Path: "/"}
	}, writes)
}

// runInjected is runErrorTxns with the txn made by mk.
func runInjected(t *testing.T, mk func(f quorum.Forwarded, zxid int64) *tree.Txn, writes int) errorTxnRun {
	v := startTwoVoters(t, nil)
	config := v.winElection(t, 0)
	const epoch = 1
	l, _, _ := v.acceptFollower(t, epoch, config)
	diff, err := quorum.NewSyncStart(quorum.Diff, 0)
	require.NoError(t, err)
	l.send(diff)
	l.finishSync()

	r := errorTxnRun{l: l}
	var created chan error
	r.c, created = createWhenUp(t, v.zk.clientPort, "/w0")
	inject := func(f quorum.Forwarded, zxid int64) *tree.Txn {
		if f.Op != proto.OpCreate {
			return nil
		}
		r.injected = append(r.injected, zxid)
		return mk(f, zxid)
	}
	results := make(chan error, writes)
	go func() {
		results <- <-created
		for i := 1; i < writes; i++ {
			_, err := r.c.Create(fmt.Sprintf("/w%d", i), []byte("ext"), 0, zk.WorldACL(zk.PermAll))
			results <- err
		}
	}()
	l.serveInjecting("the client's creates returning", inject, func() bool {
		for {
			select {
			case err := <-results:
				r.errs = append(r.errs, err)
				continue
			default:
			}
			return len(r.errs) == writes && len(l.pending) == 0
		}
	})
	info, err := srvr(v.zk.clientPort)
	require.NoError(t, err)
	r.zxid = info.zxid
	return r
}
