package autojoin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Joiner adds one server to a running ensemble through the client
// protocol: first as an observer, then, once it has caught up, as a
// participant. Every step reads the ensemble's configuration first and
// does nothing when it is already done, so running it again after a
// restart changes nothing.
type Joiner struct {
	// Self is the server's line; its role is set by each step.
	Self Member
	// Seeds are client addresses of running members.
	Seeds []string
	// Digest is user:password of an identity allowed to reconfig, "" for
	// none (an ensemble with skipACL).
	Digest string
	// Dial opens sessions (Dial(logger) outside tests).
	Dial Dialer
	// Backoff spaces out the retries.
	Backoff *Backoff
	// AttemptTimeout bounds one connection attempt.
	AttemptTimeout time.Duration
	// Logger gets a line per step and per retry.
	Logger *slog.Logger
}

func (j *Joiner) log() *slog.Logger {
	if j.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return j.Logger
}

func (j *Joiner) backoff() *Backoff {
	if j.Backoff == nil {
		j.Backoff = DefaultBackoff()
	}
	return j.Backoff
}

// session runs f with a session to one of addrs, bounded by
// AttemptTimeout for the connection.
func (j *Joiner) session(ctx context.Context, addrs []string, f func(Client) error) error {
	dctx := ctx
	if j.AttemptTimeout > 0 {
		var cancel context.CancelFunc
		dctx, cancel = context.WithTimeout(ctx, j.AttemptTimeout)
		defer cancel()
	}
	c, err := j.Dial(dctx, addrs, j.Digest)
	if err != nil {
		return err
	}
	defer c.Close()
	return f(c)
}

// Discover reads the ensemble's latest configuration from any seed.
func (j *Joiner) Discover(ctx context.Context) (Ensemble, error) {
	var e Ensemble
	err := j.session(ctx, j.Seeds, func(c Client) error {
		var err error
		e, err = c.Config(true)
		return err
	})
	return e, err
}

// retry runs step until it succeeds, fails for good, or ctx ends, waiting
// the backoff between tries.
func (j *Joiner) retry(ctx context.Context, what string, step func() error) error {
	b := j.backoff()
	defer b.Reset()
	for attempt := 1; ; attempt++ {
		err := step()
		if err == nil {
			return nil
		}
		if !retryable(err) {
			return fmt.Errorf("%s: %w", what, err)
		}
		j.log().Info("autojoin: retrying", "step", what, "attempt", attempt, "wait", b.Peek(), "err", err)
		if werr := b.Wait(ctx); werr != nil {
			return fmt.Errorf("%s: %w (last error: %v)", what, werr, err)
		}
	}
}

// Join makes Self a member: when the ensemble's configuration names it
// already (with any role: a restart) it returns that configuration;
// otherwise it adds Self as an observer, conditional on the configuration
// it read, and retries from a fresh read when another change won the race
// (BadVersion, ReconfigInProgress). The result names Self.
func (j *Joiner) Join(ctx context.Context) (Ensemble, error) {
	var out Ensemble
	err := j.retry(ctx, "join as an observer", func() error {
		return j.session(ctx, j.Seeds, func(c Client) error {
			e, err := c.Config(true)
			if err != nil {
				return err
			}
			if _, ok := e.Members[j.Self.ID]; ok {
				out = e
				return nil
			}
			line := j.Self.WithRole(true).Line()
			j.log().Info("autojoin: asking the ensemble to add this server as an observer",
				"line", line, "fromVersion", fmt.Sprintf("%x", e.Version))
			v, err := c.Reconfig([]string{line}, nil, e.Version)
			if err != nil {
				return err
			}
			if out, err = c.Config(true); err != nil {
				return err
			}
			if _, ok := out.Members[j.Self.ID]; !ok {
				return fmt.Errorf("reconfig to version %x succeeded but the configuration read back (version %x) does not name server %d", v, out.Version, j.Self.ID)
			}
			j.log().Info("autojoin: added as an observer", "version", fmt.Sprintf("%x", out.Version))
			return nil
		})
	})
	return out, err
}

// WaitSynced waits until the server at local serves reads at least as new
// as configuration version: a sync through it returns (the server has
// applied every txn its leader committed before the sync) and its own
// /zookeeper/config then names Self with that version or a later one.
func (j *Joiner) WaitSynced(ctx context.Context, local string, version int64) error {
	err := j.retry(ctx, "wait until caught up", func() error {
		return j.session(ctx, []string{local}, func(c Client) error {
			e, err := c.Config(true)
			if err != nil {
				return err
			}
			if _, ok := e.Members[j.Self.ID]; !ok || e.Version < version {
				return fmt.Errorf("%w: local configuration version %x, want %x naming server %d", errNotYet, e.Version, version, j.Self.ID)
			}
			return nil
		})
	})
	if err == nil {
		j.log().Info("autojoin: caught up", "local", local, "version", fmt.Sprintf("%x", version))
	}
	return err
}

// errNotYet is a condition still to be met: retried.
var errNotYet = errors.New("not yet")

// ErrRemoved is a server that the ensemble's configuration no longer names
// although it was a member: an operator removed it. autojoin never adds it
// back by itself.
var ErrRemoved = errors.New("this server was removed from the ensemble")

// Promote makes Self a participant, reading the configuration first: it
// does nothing when Self is one already, and stops with ErrRemoved when
// Self is not a member at all (it was removed meanwhile).
func (j *Joiner) Promote(ctx context.Context, addrs []string) (Ensemble, error) {
	return j.setRole(ctx, addrs, false)
}

// Demote makes Self an observer, as Promote makes it a participant. A
// participant whose data is lost must not vote until it has caught up
// again: its acknowledgements of committed txns are gone.
func (j *Joiner) Demote(ctx context.Context, addrs []string) (Ensemble, error) {
	return j.setRole(ctx, addrs, true)
}

func (j *Joiner) setRole(ctx context.Context, addrs []string, observer bool) (Ensemble, error) {
	role := "participant"
	if observer {
		role = "observer"
	}
	var out Ensemble
	err := j.retry(ctx, "make this server "+role, func() error {
		return j.session(ctx, addrs, func(c Client) error {
			e, err := c.Config(true)
			if err != nil {
				return err
			}
			m, ok := e.Members[j.Self.ID]
			switch {
			case !ok:
				return fmt.Errorf("%w (configuration version %x)", ErrRemoved, e.Version)
			case m.Observer == observer:
				out = e
				return nil
			case observer && e.Voters() == 1:
				return fmt.Errorf("server %d is the only participant: %w", j.Self.ID, errPermanent)
			}
			line := j.Self.WithRole(observer).Line()
			j.log().Info("autojoin: asking the ensemble to make this server "+role,
				"line", line, "fromVersion", fmt.Sprintf("%x", e.Version))
			if _, err := c.Reconfig([]string{line}, nil, e.Version); err != nil {
				return err
			}
			if out, err = c.Config(true); err != nil {
				return err
			}
			if m, ok := out.Members[j.Self.ID]; !ok || m.Observer != observer {
				return fmt.Errorf("reconfig succeeded but configuration version %x does not name server %d as %s", out.Version, j.Self.ID, role)
			}
			j.log().Info("autojoin: this server is now "+role, "version", fmt.Sprintf("%x", out.Version))
			return nil
		})
	})
	return out, err
}

// Remove takes server id out of the ensemble (scaling down), conditional
// on the configuration it read and retried like Join. Removing a server
// that is not a member does nothing. It refuses to remove the last
// participant.
func (j *Joiner) Remove(ctx context.Context, id int) (Ensemble, error) {
	var out Ensemble
	err := j.retry(ctx, fmt.Sprintf("remove server %d", id), func() error {
		return j.session(ctx, j.Seeds, func(c Client) error {
			e, err := c.Config(true)
			if err != nil {
				return err
			}
			m, ok := e.Members[id]
			if !ok {
				out = e
				return nil
			}
			if !m.Observer && e.Voters() == 1 {
				return fmt.Errorf("server %d is the last participant: %w", id, errPermanent)
			}
			j.log().Info("removing server from the ensemble", "id", id, "fromVersion", fmt.Sprintf("%x", e.Version))
			if _, err := c.Reconfig(nil, []int{id}, e.Version); err != nil {
				return err
			}
			if out, err = c.Config(true); err != nil {
				return err
			}
			if _, ok := out.Members[id]; ok {
				return fmt.Errorf("reconfig succeeded but configuration version %x still names server %d", out.Version, id)
			}
			return nil
		})
	})
	return out, err
}

// errPermanent marks an error that retrying cannot mend.
var errPermanent = errors.New("refused")
