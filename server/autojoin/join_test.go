package autojoin

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

const (
	line1 = "server.1=zk-0.zk-hs:2888:3888:participant;0.0.0.0:2181"
	line2 = "server.2=zk-1.zk-hs:2888:3888:participant;0.0.0.0:2181"
	line3 = "server.3=zk-2.zk-hs:2888:3888:participant;0.0.0.0:2181"
)

func self4(t *testing.T) Member {
	t.Helper()
	m, err := ParseMember(4, "zk-3.zk-hs:2888:3888;2181")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestBackoffDoublesUpToMaxWithJitterFromTheInjectedSource(t *testing.T) {
	s := &fakeSleep{}
	b := testBackoff(s)
	for range 6 {
		if err := b.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	bases := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range s.waits {
		base := bases[i] * time.Millisecond
		if w < base/2 || w > base {
			t.Fatalf("wait %d = %v, want within [%v, %v]", i, w, base/2, base)
		}
	}
	again := &fakeSleep{}
	b2 := testBackoff(again)
	for range 6 {
		_ = b2.Wait(context.Background())
	}
	for i := range s.waits {
		if s.waits[i] != again.waits[i] {
			t.Fatalf("same seed, different waits: %v vs %v", s.waits, again.waits)
		}
	}
	b.Reset()
	if b.Peek() != 100*time.Millisecond {
		t.Fatalf("after Reset the next wait is %v, want Min", b.Peek())
	}
}

func TestBackoffWaitEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := &Backoff{Min: time.Hour, Max: time.Hour}
	if err := b.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait on a cancelled context = %v, want context.Canceled", err)
	}
}

func TestJoinAddsAnObserverOnce(t *testing.T) {
	f := newFake(line1, line2, line3)
	s := &fakeSleep{}
	j := &Joiner{Self: self4(t), Seeds: []string{"zk-0.zk-hs:2181"}, Dial: f.dial, Backoff: testBackoff(s)}
	e, err := j.Join(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m, ok := e.Members[4]
	if !ok || !m.Observer || m.Line() != "server.4=zk-3.zk-hs:2888:3888:observer;2181" {
		t.Fatalf("joined as %+v (member %v), want an observer line", m, ok)
	}
	if f.reconfigs != 1 || len(s.waits) != 0 {
		t.Fatalf("%d reconfigs, %d waits; want 1 and 0", f.reconfigs, len(s.waits))
	}
	// A restart: already a member, nothing changes.
	again, err := j.Join(context.Background())
	if err != nil || again.Version != e.Version || f.reconfigs != 1 {
		t.Fatalf("second Join: %v, version %x -> %x, %d reconfigs; want no change", err, e.Version, again.Version, f.reconfigs)
	}
}

func TestJoinRetriesALostRaceFromAFreshRead(t *testing.T) {
	f := newFake(line1, line2, line3)
	// Another joiner wins between our read and our reconfig, and then a
	// change is in flight when we try again.
	f.fail = []error{zk.ErrBadVersion, errInProgress}
	s := &fakeSleep{}
	j := &Joiner{Self: self4(t), Seeds: []string{"a:1"}, Dial: f.dial, Backoff: testBackoff(s)}
	e, err := j.Join(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := e.Members[4]; !ok {
		t.Fatalf("not a member after the retries:\n%s", e)
	}
	if f.reconfigs != 3 || len(s.waits) != 2 {
		t.Fatalf("%d reconfigs, %d waits; want 3 and 2", f.reconfigs, len(s.waits))
	}
	if j.Backoff.Peek() != j.Backoff.Min {
		t.Fatalf("backoff not reset after success: next %v", j.Backoff.Peek())
	}
}

func TestJoinStopsWhenTheEnsembleCannotReconfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"ReconfigDisabled", zk.ErrReconfigDisabled, ErrReconfigUnsupported},
		{"Unimplemented", errUnimplemented, ErrReconfigUnsupported},
		{"NoAuth", zk.ErrNoAuth, zk.ErrNoAuth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(line1, line2, line3)
			f.fail = []error{tc.err}
			s := &fakeSleep{}
			j := &Joiner{Self: self4(t), Seeds: []string{"a:1"}, Dial: f.dial, Backoff: testBackoff(s)}
			_, err := j.Join(context.Background())
			if !errors.Is(err, tc.want) {
				t.Fatalf("Join = %v, want %v", err, tc.want)
			}
			if f.reconfigs != 1 || len(s.waits) != 0 {
				t.Fatalf("%d reconfigs, %d waits: a permanent refusal must not be retried", f.reconfigs, len(s.waits))
			}
		})
	}
}

func TestJoinRetriesWhileNoServerAnswers(t *testing.T) {
	f := newFake(line1, line2, line3)
	f.down = true
	s := &fakeSleep{limit: 4}
	j := &Joiner{Self: self4(t), Seeds: []string{"a:1"}, Dial: f.dial, Backoff: testBackoff(s)}
	if _, err := j.Join(context.Background()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Join = %v, want the wait's cancellation", err)
	}
	if f.dials != 4 || f.reconfigs != 0 {
		t.Fatalf("%d dials, %d reconfigs; want 4 and 0", f.dials, f.reconfigs)
	}
}

func TestPromoteMakesAnObserverAParticipantAndStopsIfRemoved(t *testing.T) {
	f := newFake(line1, line2, line3, "server.4=zk-3.zk-hs:2888:3888:observer;2181")
	f.fail = []error{errors.New("unknown error: -13")} // NewConfigNoQuorum: not synced yet
	s := &fakeSleep{}
	j := &Joiner{Self: self4(t), Seeds: []string{"a:1"}, Dial: f.dial, Backoff: testBackoff(s)}
	e, err := j.Promote(context.Background(), j.Seeds)
	if err != nil {
		t.Fatal(err)
	}
	if m := e.Members[4]; m.Observer || e.Voters() != 4 || len(s.waits) != 1 {
		t.Fatalf("after Promote: %+v, %d voters, %d waits", m, e.Voters(), len(s.waits))
	}
	n := f.reconfigs
	if _, err := j.Promote(context.Background(), j.Seeds); err != nil || f.reconfigs != n {
		t.Fatalf("promoting a participant again: %v, %d reconfigs; want none", err, f.reconfigs-n)
	}
	gone := newFake(line1, line2, line3)
	j.Dial = gone.dial
	if _, err := j.Promote(context.Background(), j.Seeds); !errors.Is(err, ErrRemoved) || gone.reconfigs != 0 {
		t.Fatalf("promoting a removed server = %v (%d reconfigs), want ErrRemoved and none", err, gone.reconfigs)
	}
}

func TestRemoveIsIdempotentAndKeepsAParticipant(t *testing.T) {
	f := newFake(line1, line2, line3)
	j := &Joiner{Seeds: []string{"a:1"}, Dial: f.dial, Backoff: testBackoff(&fakeSleep{})}
	e, err := j.Remove(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := e.Members[3]; ok || len(e.Members) != 2 {
		t.Fatalf("after removing 3:\n%s", e)
	}
	if _, err := j.Remove(context.Background(), 3); err != nil || f.reconfigs != 1 {
		t.Fatalf("removing 3 again: %v, %d reconfigs; want nothing done", err, f.reconfigs)
	}
	one := newFake(line1)
	j.Dial = one.dial
	if _, err := j.Remove(context.Background(), 1); err == nil || one.reconfigs != 0 {
		t.Fatalf("removing the last participant = %v, want a refusal", err)
	}
}

func TestParseEnsembleReadsZooKeeperConfig(t *testing.T) {
	e, err := ParseEnsemble("server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n" +
		"server.2=[::1]:2889:3889:observer;127.0.0.2:2182\nserver.3=h3:1:2\nversion=10000000a\n")
	if err != nil {
		t.Fatal(err)
	}
	if e.Version != 0x10000000a || e.Voters() != 2 {
		t.Fatalf("version %x voters %d", e.Version, e.Voters())
	}
	if got := e.Members[1].Client; got != "127.0.0.1:2181" {
		t.Fatalf("wildcard client address: %q, want the peer host", got)
	}
	if got := e.Members[2].Client; got != "127.0.0.2:2182" {
		t.Fatalf("client address %q", got)
	}
	if e.Members[3].Client != "" {
		t.Fatalf("a line without a client part has client %q", e.Members[3].Client)
	}
	if got := e.Members[2].WithRole(false).Spec; got != "[::1]:2889:3889:participant;127.0.0.2:2182" {
		t.Fatalf("WithRole: %q", got)
	}
	for _, bad := range []string{"", "version=zz\nserver.1=a:1:2", "server.x=a:1:2", "server.1=a:1:2:voter", "server.1=a:1:2;port"} {
		if _, err := ParseEnsemble(bad); err == nil {
			t.Fatalf("ParseEnsemble(%q) accepted", bad)
		}
	}
}
