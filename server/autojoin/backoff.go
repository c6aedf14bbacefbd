package autojoin

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff spaces out retries: the wait doubles from Min up to Max, with
// jitter so that two servers started together (a scale from 3 to 5) stop
// colliding. Sleep and Rand are injected so tests run without waiting and
// draw the same jitter every time.
type Backoff struct {
	// Min is the first wait, Max the largest.
	Min, Max time.Duration
	// Sleep waits d or until ctx ends, whichever is first, and returns
	// ctx's error in the second case. nil means a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand draws the jitter: a wait is d/2 plus a uniform share of d/2.
	// nil means an unseeded source (production; tests pass a seeded one).
	Rand *rand.Rand

	next time.Duration
}

// DefaultBackoff is what `zabkeeper server` retries with.
func DefaultBackoff() *Backoff {
	return &Backoff{Min: 200 * time.Millisecond, Max: 10 * time.Second}
}

// Wait sleeps the next wait and doubles it; it returns ctx's error if ctx
// ends first.
func (b *Backoff) Wait(ctx context.Context) error {
	d := b.Peek()
	b.next = min(2*b.next, b.Max)
	if b.Rand == nil {
		b.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if half := d / 2; half > 0 {
		d = half + time.Duration(b.Rand.Int64N(int64(half)+1))
	}
	sleep := b.Sleep
	if sleep == nil {
		sleep = timerSleep
	}
	return sleep(ctx, d)
}

// Peek is the next wait before jitter.
func (b *Backoff) Peek() time.Duration {
	if b.next == 0 {
		b.next = max(b.Min, time.Millisecond)
	}
	return b.next
}

// Reset starts the waits from Min again, after a success.
func (b *Backoff) Reset() { b.next = 0 }

// timerSleep sleeps d or until ctx ends.
func timerSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
