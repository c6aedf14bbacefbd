package load

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/linearizability"
)

func setOp(call, ret int64, code int32) linearizability.Op {
	return linearizability.Op{Session: 1, Call: call, Return: ret, Err: code, Kind: linearizability.SetData,
		Path: "/a", Data: []byte("x"), Version: -1}
}

// The recorder counts unknown outcomes, keeps the acknowledgement times of
// successful writes only, and appends one closeSession per expired session
// after the session's last reply.
func TestRecorder(t *testing.T) {
	r := NewRecorder()
	r.Add(setOp(10, 20, linearizability.ErrOK))
	r.Add(setOp(30, linearizability.Unknown, 0))
	r.Add(setOp(40, 50, linearizability.ErrBadVersion))
	r.Add(linearizability.Op{Session: 2, Call: 60, Return: 70, Kind: linearizability.GetData, Path: "/a", Err: linearizability.ErrNoNode})
	r.NoteExpired(0) // no session: ignored
	r.NoteExpired(2)
	first := r.History().Ops[4].Call
	r.NoteExpired(2) // noted once
	unknowns, expired := r.Counts()
	require.Equal(t, 1, unknowns)
	require.Equal(t, 1, expired)
	require.True(t, r.Expired(2))
	require.False(t, r.Expired(1))
	require.Equal(t, []int64{2}, r.ExpiredSessions())
	require.Equal(t, []int64{20}, r.Acks())

	h := r.History()
	require.Len(t, h.Ops, 5)
	closeOp := h.Ops[4]
	require.Equal(t, linearizability.CloseSession, closeOp.Kind)
	require.Equal(t, int64(2), closeOp.Session)
	require.Equal(t, int64(70), closeOp.Call, "the expiry may have happened any time after the session's last reply")
	require.Equal(t, int64(linearizability.Unknown), closeOp.Return)
	require.Equal(t, first, closeOp.Call)
	require.Len(t, r.History().Ops, 5, "History does not change the recorded ops")
}

func TestExpiredBetween(t *testing.T) {
	r := NewRecorder()
	before := time.Now()
	r.NoteExpired(7)
	r.NoteExpired(8)
	after := time.Now()
	require.Equal(t, 2, r.ExpiredBetween(before, after))
	require.Equal(t, 0, r.ExpiredBetween(after.Add(time.Nanosecond), after.Add(time.Hour)))
}

// WritePause is the longest gap between acknowledgements that overlaps the
// window, the window's edges counting when no write was acknowledged
// beyond them.
func TestWritePause(t *testing.T) {
	r := NewRecorder()
	at := func(ns int64) time.Time { return time.Unix(0, ns) }
	for _, ret := range []int64{100, 110, 150, 300, 310} {
		r.Add(setOp(ret-5, ret, linearizability.ErrOK))
	}
	r.Add(setOp(400, 500, linearizability.ErrNodeExists)) // not acknowledged as a success
	cases := []struct {
		from, to int64
		want     time.Duration
	}{
		{120, 200, 150},  // 150 -> 300, overlapping the window's end
		{100, 120, 40},   // 110 -> 150
		{320, 600, 290},  // nothing after 310: up to the window's end
		{0, 50, 100},     // nothing before: from to the first ack, past the window
		{150, 150, 150},  // an ack exactly at from: the gap after it
		{105, 111, 40},   // from falls between 100 and 110: 110 -> 150 still overlaps
		{305, 309, 10},   // inside 300 -> 310
		{301, 1000, 690}, // 310 -> 1000
	}
	for _, c := range cases {
		require.Equal(t, c.want, r.WritePause(at(c.from), at(c.to)), "window [%d, %d]", c.from, c.to)
	}
}

// A confirmed expiry returns when it was confirmed; an unconfirmed one
// never does.
func TestRecorderConfirmedExpiry(t *testing.T) {
	r := NewRecorder()
	r.Add(linearizability.Op{Session: 3, Call: 10, Return: 20, Kind: linearizability.Create, Path: "/e", Mode: linearizability.ModeEphemeral})
	r.Add(linearizability.Op{Session: 4, Call: 10, Return: 20, Kind: linearizability.GetData, Path: "/e"})
	r.NoteExpired(3)
	r.NoteExpired(4)
	r.ConfirmExpired(3, 500)
	r.ConfirmExpired(3, 900) // the first confirmation counts
	h := r.History()
	require.Len(t, h.Ops, 4)
	require.Equal(t, linearizability.Op{Session: 3, Call: 20, Return: 500, Kind: linearizability.CloseSession}, h.Ops[2])
	require.Equal(t, linearizability.Op{Session: 4, Call: 20, Return: linearizability.Unknown, Kind: linearizability.CloseSession}, h.Ops[3])
}
