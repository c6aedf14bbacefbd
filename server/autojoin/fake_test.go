package autojoin

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
)

// fakeEnsemble is an ensemble's configuration behind the Client
// interface, with ZooKeeper's reconfig rules that autojoin relies on: the
// fromConfig version check (BadVersion), and injected failures.
type fakeEnsemble struct {
	mu sync.Mutex
	e  Ensemble
	// fail holds the errors (go-zk's forms) the next reconfigs get.
	fail []error
	// down makes every dial fail, as when no server answers.
	down bool
	// reconfigs counts the reconfigs carried out or refused.
	reconfigs int
	dials     int
}

func newFake(lines ...string) *fakeEnsemble {
	e, err := ParseEnsemble(strings.Join(lines, "\n") + "\nversion=100000000")
	if err != nil {
		panic(err)
	}
	return &fakeEnsemble{e: e}
}

func (f *fakeEnsemble) dial(ctx context.Context, addrs []string, digest string) (Client, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dials++
	if f.down {
		return nil, fmt.Errorf("connect %v: connection refused", addrs)
	}
	return fakeClient{f}, nil
}

func (f *fakeEnsemble) config() Ensemble {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.e.clone()
}

func (e Ensemble) clone() Ensemble {
	c := Ensemble{Members: map[int]Member{}, Version: e.Version}
	for id, m := range e.Members {
		c.Members[id] = m
	}
	return c
}

type fakeClient struct{ f *fakeEnsemble }

func (c fakeClient) Config(bool) (Ensemble, error) { return c.f.config(), nil }

// ConfigW never fires: the fake's tests do not follow changes.
func (c fakeClient) ConfigW() (Ensemble, <-chan struct{}, error) { return c.f.config(), nil, nil }

func (c fakeClient) Reconfig(joining []string, leaving []int, from int64) (int64, error) {
	f := c.f
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reconfigs++
	if len(f.fail) > 0 {
		err := f.fail[0]
		f.fail = f.fail[1:]
		return 0, classify(err)
	}
	if from != -1 && from != f.e.Version {
		return 0, classify(zk.ErrBadVersion)
	}
	next := f.e.clone()
	for _, id := range leaving {
		delete(next.Members, id)
	}
	for _, line := range joining {
		key, spec, _ := strings.Cut(line, "=")
		id, _ := strconv.Atoi(strings.TrimPrefix(key, "server."))
		m, err := ParseMember(id, spec)
		if err != nil {
			return 0, classify(zk.ErrBadArguments)
		}
		next.Members[id] = m
	}
	next.Version = f.e.Version + 0x10
	f.e = next
	return next.Version, nil
}

func (c fakeClient) Close() {}

// errInProgress is how go-zk reports ZooKeeper's ReconfigInProgress.
var errInProgress = errors.New("unknown error: -14")

// errUnimplemented is how go-zk reports Unimplemented.
var errUnimplemented = errors.New("unknown error: -6")

// fakeSleep records the waits instead of sleeping; after limit waits it
// ends the wait with an error, as a cancelled context would.
type fakeSleep struct {
	mu    sync.Mutex
	waits []time.Duration
	limit int
}

func (s *fakeSleep) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waits = append(s.waits, d)
	if s.limit > 0 && len(s.waits) >= s.limit {
		return context.Canceled
	}
	return ctx.Err()
}

func testBackoff(s *fakeSleep) *Backoff {
	return &Backoff{Min: 100 * time.Millisecond, Max: time.Second, Sleep: s.sleep, Rand: rand.New(rand.NewPCG(1, 2))}
}
