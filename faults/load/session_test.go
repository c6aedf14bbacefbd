package load

import (
	"errors"
	"fmt"
	"testing"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/linearizability"
)

// ErrCode gives definite codes for the errors the server sends, and an
// unknown outcome for what a lost connection or session leaves open.
func TestErrCode(t *testing.T) {
	definite := map[error]int32{
		nil:                                     linearizability.ErrOK,
		zk.ErrNoNode:                            linearizability.ErrNoNode,
		zk.ErrNodeExists:                        linearizability.ErrNodeExists,
		zk.ErrBadVersion:                        linearizability.ErrBadVersion,
		zk.ErrNotEmpty:                          linearizability.ErrNotEmpty,
		zk.ErrNoChildrenForEphemerals:           linearizability.ErrNoChildrenForEphemeral,
		zk.ErrBadArguments:                      linearizability.ErrBadArguments,
		fmt.Errorf("wrapped: %w", zk.ErrNoNode): linearizability.ErrNoNode,
	}
	for err, want := range definite {
		code, ok := ErrCode(err)
		require.True(t, ok, "%v", err)
		require.Equal(t, want, code, "%v", err)
	}
	for _, err := range []error{zk.ErrConnectionClosed, zk.ErrSessionExpired, zk.ErrNoServer, zk.ErrClosing, errors.New("i/o timeout")} {
		_, ok := ErrCode(err)
		require.False(t, ok, "%v leaves the outcome unknown", err)
	}
}

func TestSubCode(t *testing.T) {
	require.Equal(t, int32(0), SubCode(nil))
	require.Equal(t, int32(-101), SubCode(zk.ErrNoNode))
	require.Equal(t, int32(-110), SubCode(zk.ErrNodeExists))
	require.Equal(t, int32(-2), SubCode(errors.New("unknown error: -2")), "RuntimeInconsistency, which go-zk has no value for")
	require.Equal(t, int32(-1), SubCode(errors.New("something else")))
}

// Do records each call with its outcome; a read right after a successful
// sync is a synced read; an expired session is noted.
func TestSessionDo(t *testing.T) {
	rec := NewRecorder()
	s := &Session{ID: 3, Rec: rec}
	ok := func(*linearizability.Op) error { return nil }
	read := linearizability.Op{Session: 9, Kind: linearizability.GetData, Path: "/a"}

	op, gen := s.Do(read, func(op *linearizability.Op) error { op.RespData = []byte("v"); return nil })
	require.Equal(t, 0, gen, "no tap, no generation")
	require.True(t, op.Completed())
	require.False(t, op.SyncedBefore)
	require.Equal(t, "v", string(op.RespData))
	require.LessOrEqual(t, op.Call, op.Return)

	s.Do(linearizability.Op{Session: 9, Kind: linearizability.Sync, Path: "/a"}, ok)
	op, _ = s.Do(read, ok)
	require.True(t, op.SyncedBefore, "a read after a successful sync")
	op, _ = s.Do(read, ok)
	require.False(t, op.SyncedBefore, "only the read right after the sync")

	s.Do(linearizability.Op{Session: 9, Kind: linearizability.Sync, Path: "/a"}, func(*linearizability.Op) error { return zk.ErrConnectionClosed })
	op, _ = s.Do(read, ok)
	require.False(t, op.SyncedBefore, "a sync of unknown outcome syncs nothing")

	op, _ = s.Do(linearizability.Op{Session: 9, Kind: linearizability.Delete, Path: "/a", Version: -1},
		func(*linearizability.Op) error { return zk.ErrSessionExpired })
	require.False(t, op.Completed())
	require.Equal(t, int64(linearizability.Unknown), op.Return)
	require.True(t, rec.Expired(9))

	op, _ = s.Do(linearizability.Op{Session: 10, Kind: linearizability.Create, Path: "/b"}, func(*linearizability.Op) error { return zk.ErrNodeExists })
	require.True(t, op.Completed())
	require.Equal(t, linearizability.ErrNodeExists, op.Err)

	require.Equal(t, "w3-1", string(s.Data()))
	require.Equal(t, 2, s.Seq())
	require.Equal(t, "w3-3", string(s.Data()))
	unknowns, _ := rec.Counts()
	require.Equal(t, 2, unknowns)
	require.Len(t, rec.History().Ops, 8+1, "eight calls and the expiry")
}
