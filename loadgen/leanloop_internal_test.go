package loadgen

import (
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/proto"
)

// streamSess is a session of an event loop with a getData of a 3-byte
// value outstanding (xid 1, measured), fed bytes by hand.
func streamSess() *leanSess {
	r := &runner{cfg: Config{Workload: Get}, value: []byte("abc"), stop: make(chan struct{})}
	w := &worker{hist: hdrhistogram.New(histMinMicros, histMaxMicros, histDigits), kinds: map[string]int64{}}
	c := &leanConn{xid: 1}
	return &leanSess{r: r, w: w, c: c, in: make([]byte, 0, 16), busy: true, measured: true, op: proto.OpGetData,
		start: time.Unix(1, 0), role: "session 0", counts: true}
}

// getReply is the reply to the getData of streamSess.
func getReply(xid int32, data string) []byte {
	return proto.AppendRecords(nil, &proto.ReplyHeader{Xid: xid, Zxid: 5},
		&proto.GetDataResponse{Data: []byte(data)})
}

// feed hands s the stream in pieces cut at cuts and returns how many
// replies it took as answers, and the first error.
func feed(s *leanSess, stream []byte, cuts []int) (answered int, err error) {
	at := 0
	for _, cut := range append(cuts, len(stream)) {
		if cut < at || cut > len(stream) {
			continue
		}
		s.in = append(s.in, stream[at:cut]...)
		at = cut
		a, result, err := s.received(time.Unix(2, 0))
		if a {
			answered++
			s.answer(time.Unix(2, 0), result)
		}
		if err != nil {
			return answered, err
		}
	}
	return answered, nil
}

// A reply behind a watch notification, cut anywhere into two or three
// reads, is one answer: the notification kept, the latency recorded once.
func TestLeanSessSplitReplies(t *testing.T) {
	stream := append(notification(3, "/fan", proto.ErrOK), getReply(1, "abc")...)
	for i := 0; i <= len(stream); i++ {
		for j := i; j <= len(stream); j += 7 {
			s := streamSess()
			answered, err := feed(s, stream, []int{i, j})
			require.NoError(t, err)
			require.Equal(t, 1, answered, "cut at %d and %d", i, j)
			require.False(t, s.busy)
			require.Len(t, s.c.events, 1)
			require.Equal(t, "/fan", s.c.events[0].Path)
			require.EqualValues(t, 1, s.w.hist.TotalCount())
			require.Empty(t, s.in)
		}
	}
}

// A reply the session did not ask for, a second reply, a wrong xid or
// length, and an over-long frame end the session with the goroutine path's
// errors; a server's error code is counted and pauses it.
func TestLeanSessBadReplies(t *testing.T) {
	for _, tc := range []struct {
		stream []byte
		want   string
	}{
		{getReply(2, "abc"), "reply xid does not match the request's (2, want 1)"},
		{getReply(1, "abcd"), "getData answered 4 bytes of data"},
		{append(getReply(1, "abc"), getReply(2, "abc")...), "(2 with no request outstanding)"},
		{[]byte{0x7f, 0, 0, 0}, "frame length 2130706432 out of range"},
		{[]byte{0, 0, 0, 3, 1, 2, 3}, "reply of 3 bytes, shorter than its header"},
		{notification(3, "/x", proto.ErrNoNode), "notification with error"},
	} {
		s := streamSess()
		_, err := feed(s, tc.stream, nil)
		require.ErrorContains(t, err, tc.want)
		require.ErrorContains(t, s.r.fatal, "loadgen: session 0: ")
		require.True(t, s.idle)
	}
	s := streamSess()
	stream := proto.AppendRecords(nil, &proto.ReplyHeader{Xid: 1, Zxid: 5, Err: proto.ErrNoNode})
	answered, err := feed(s, stream, nil)
	require.NoError(t, err)
	require.Equal(t, 1, answered)
	require.Equal(t, time.Unix(2, 0).Add(errorPause), s.resumeAt)
	require.Equal(t, map[string]int64{proto.ErrNoNode.Error(): 1}, s.w.kinds)
	require.Nil(t, s.r.fatal)
}

// FuzzLeanStream feeds arbitrary bytes, cut into arbitrary reads, to a
// session of an event loop awaiting a reply: it takes at most one answer,
// or ends the session with an error, and never panics.
func FuzzLeanStream(f *testing.F) {
	reply := getReply(1, "abc")
	f.Add(reply, []byte{3})
	f.Add(append(notification(3, "/fan", proto.ErrOK), reply...), []byte{1, 30})
	f.Add(append(reply, reply...), []byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, []byte{2})
	f.Add([]byte{0, 0, 0, 200, 0, 0, 0, 1}, []byte{5})
	f.Fuzz(func(t *testing.T, stream, cutBytes []byte) {
		cuts := make([]int, len(cutBytes))
		at := 0
		for i, c := range cutBytes {
			at += int(c)
			cuts[i] = at
		}
		s := streamSess()
		answered, err := feed(s, stream, cuts)
		require.LessOrEqual(t, answered, 1)
		if err != nil {
			require.True(t, s.idle)
			require.Error(t, s.r.fatal)
			return
		}
		if answered == 1 {
			require.False(t, s.busy)
			require.GreaterOrEqual(t, len(stream), 4+16)
		}
	})
}
