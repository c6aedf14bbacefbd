package autojoin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zabkeeper/zabkeeper/server"
)

// MembersFile is the file in dataDir where a server with autojoin keeps
// the last ensemble configuration naming it, in /zookeeper/config's form.
// It lets a restart tell itself from a removal, and a whole ensemble
// restarted at once start from its latest members rather than zoo.cfg's.
const MembersFile = "autojoin.members"

// DefaultDiscoverTimeout is how long a server listed in zoo.cfg looks for
// a running ensemble before it starts with its local configuration (the
// first start of an ensemble, or all of it restarting).
const DefaultDiscoverTimeout = 10 * time.Second

// Start is autojoin for `zabkeeper server` with zabkeeper.autojoin on.
// Prepare runs before the server starts and settles the members it starts
// with; Run runs beside the server, promotes it and keeps MembersFile
// current.
type Start struct {
	// Config is the server's configuration; Prepare sets its members.
	Config *server.Config
	// Dial opens sessions (Dial(logger) outside tests).
	Dial Dialer
	// Backoff spaces out retries (DefaultBackoff when nil).
	Backoff *Backoff
	// DiscoverTimeout: see DefaultDiscoverTimeout (used when 0).
	DiscoverTimeout time.Duration
	// Logger gets every decision.
	Logger *slog.Logger

	joiner  *Joiner
	promote bool
	version int64
}

// Prepare decides the members this server starts with and writes them to
// Config:
//   - a running ensemble names it (a restart, or a member of zoo.cfg's
//     list): that configuration, nothing changed; but a participant with
//     neither MembersFile nor a txn log or snapshot (an empty volume) is
//     made an observer first, and Run promotes it once caught up;
//   - it names it not, and MembersFile says it was a member: ErrRemoved
//     (an operator removed it; it is not added back);
//   - it names it not: it is added as an observer, and Run promotes it;
//   - no ensemble answers within DiscoverTimeout: a server of zoo.cfg's
//     list, or one with a MembersFile naming it, starts with the newer of
//     the two (an ensemble's first start, or all of it restarting); any
//     other keeps looking, since it cannot form a quorum alone.
func (s *Start) Prepare(ctx context.Context) error {
	cfg := s.Config
	log := s.log()
	selfSpec, err := cfg.AutoJoinSelf()
	if err != nil {
		return err
	}
	self, err := ParseMember(cfg.ServerID, serverValue(selfSpec))
	if err != nil {
		return fmt.Errorf("autojoin: this server's line: %w", err)
	}
	saved, hasSaved, err := LoadMembers(cfg.DataDir)
	if err != nil {
		return err
	}
	_, savedSelf := saved.Members[cfg.ServerID]
	inStatic := false
	if _, ok := cfg.Servers[cfg.ServerID]; ok {
		inStatic = true
	}
	seeds := cfg.AutoJoinSeeds()
	for _, c := range saved.Clients() {
		if !slices.Contains(seeds, c) && c != self.Client {
			seeds = append(seeds, c)
		}
	}
	if len(seeds) == 0 {
		return errors.New("autojoin: no seed to find the ensemble by (set zabkeeper.autojoin.seeds or list the members in server.N lines)")
	}
	s.joiner = &Joiner{Self: self, Seeds: seeds, Digest: cfg.AutoJoin.Digest, Dial: s.Dial,
		Backoff: s.backoff(), AttemptTimeout: s.discoverTimeout(), Logger: log}
	log.Info("autojoin: looking for the running ensemble", "serverId", cfg.ServerID, "seeds", seeds,
		"savedVersion", fmt.Sprintf("%x", saved.Version), "inZooCfg", inStatic)

	var e Ensemble
	for {
		e, err = s.joiner.Discover(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if inStatic || hasSaved && savedSelf {
			log.Warn("autojoin: no running ensemble answered; starting with the local configuration", "err", err)
			if hasSaved && savedSelf {
				return s.use(saved, false)
			}
			return nil // zoo.cfg's server.N lines, as without autojoin
		}
		log.Warn("autojoin: no running ensemble answered; this server is in no local configuration and cannot start alone, retrying",
			"err", err, "wait", s.joiner.backoff().Peek())
		if err := s.joiner.backoff().Wait(ctx); err != nil {
			return err
		}
	}
	s.joiner.backoff().Reset()
	if hasSaved && savedSelf && saved.Version > e.Version {
		log.Warn("autojoin: the local configuration is newer than the ensemble's; starting with the local one",
			"local", fmt.Sprintf("%x", saved.Version), "ensemble", fmt.Sprintf("%x", e.Version))
		return s.use(saved, false)
	}
	if m, ok := e.Members[cfg.ServerID]; ok {
		if !m.Observer && !hasSaved && !hasData(cfg.DataDir, cfg.DataLogDir) {
			// A participant on an empty volume (lost, or a PVC deleted
			// without the removal): voting before it has caught up could
			// elect a leader without txns a quorum acknowledged.
			log.Warn("autojoin: the ensemble counts this server as a participant but its data directory is empty; it rejoins as an observer first",
				"version", fmt.Sprintf("%x", e.Version))
			demoted, err := s.joiner.Demote(ctx, seeds)
			switch {
			case errors.Is(err, ErrReconfigUnsupported):
				// As without autojoin: the ensemble cannot demote it.
				log.Warn("autojoin: the ensemble does not carry out reconfig; starting as the participant it names", "err", err)
				return s.use(e, false)
			case err != nil:
				return fmt.Errorf("autojoin: %w", err)
			}
			return s.use(demoted, !self.Observer)
		}
		log.Info("autojoin: already a member; nothing to change", "version", fmt.Sprintf("%x", e.Version), "observer", m.Observer)
		return s.use(e, m.Observer && !self.Observer)
	}
	if hasSaved && savedSelf {
		return fmt.Errorf("autojoin: %w: configuration version %x no longer names server %d, which %s (version %x) does; "+
			"it is not added back by itself: finish the scale-down (kubectl scale), or delete its data directory to join as a new server",
			ErrRemoved, e.Version, cfg.ServerID, filepath.Join(cfg.DataDir, MembersFile), saved.Version)
	}
	joined, err := s.joiner.Join(ctx)
	if err != nil {
		return fmt.Errorf("autojoin: %w", err)
	}
	return s.use(joined, !self.Observer)
}

// use makes e the members the server starts with and records it.
func (s *Start) use(e Ensemble, promote bool) error {
	if err := s.Config.UseEnsembleConfig(e.String()); err != nil {
		return fmt.Errorf("autojoin: %w", err)
	}
	if err := SaveMembers(s.Config.DataDir, e); err != nil {
		return err
	}
	s.promote, s.version = promote, e.Version
	return nil
}

// Run runs while the server serves: when Prepare added the server as an
// observer it waits until the server has caught up and makes it a
// participant; then it follows the configuration through the server
// itself, keeping MembersFile current, until ctx ends. Failures are logged;
// the server keeps serving (as an observer if promotion failed for good).
func (s *Start) Run(ctx context.Context) {
	if s.joiner == nil {
		return
	}
	log := s.log()
	local := localAddress(s.Config.ClientPortAddress, s.Config.ClientPort)
	if s.promote {
		if err := s.joiner.WaitSynced(ctx, local, s.version); err != nil {
			log.Error("autojoin: server did not catch up; it stays an observer", "err", err)
		} else if e, err := s.joiner.Promote(ctx, s.joiner.Seeds); err != nil {
			// Through the running members, not this server: the request
			// is the ensemble's to carry out.
			log.Error("autojoin: promotion to participant failed; the server stays an observer", "err", err)
		} else if err := SaveMembers(s.Config.DataDir, e); err != nil {
			log.Error("autojoin: record the members", "err", err)
		} else {
			s.version = e.Version
		}
	}
	s.follow(ctx, local)
}

// follow saves every configuration the local server reports that still
// names it, watching /zookeeper/config on one session; one that does not
// name it (a removal) is not saved, so a restart sees the removal. A
// failed session is opened again after the backoff.
func (s *Start) follow(ctx context.Context, local string) {
	log := s.log()
	last := s.version
	b := s.backoff()
	for {
		err := s.joiner.session(ctx, []string{local}, func(c Client) error {
			for {
				e, changed, err := c.ConfigW()
				if err != nil {
					return err
				}
				b.Reset()
				if e.Version != last {
					if _, ok := e.Members[s.Config.ServerID]; !ok {
						log.Warn("autojoin: the ensemble's configuration no longer names this server (removed)", "version", fmt.Sprintf("%x", e.Version))
					} else if err := SaveMembers(s.Config.DataDir, e); err != nil {
						return err
					} else {
						log.Info("autojoin: recorded the ensemble's new configuration", "version", fmt.Sprintf("%x", e.Version), "members", len(e.Members))
					}
					last = e.Version
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-changed:
				}
			}
		})
		if ctx.Err() != nil {
			return
		}
		log.Debug("autojoin: following the local configuration", "err", err)
		if b.Wait(ctx) != nil {
			return
		}
	}
}

func (s *Start) log() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Start) backoff() *Backoff {
	if s.Backoff == nil {
		s.Backoff = DefaultBackoff()
	}
	return s.Backoff
}

func (s *Start) discoverTimeout() time.Duration {
	if s.DiscoverTimeout > 0 {
		return s.DiscoverTimeout
	}
	return DefaultDiscoverTimeout
}

// localAddress is where this process reaches its own client listener:
// loopback unless the listener is bound to one address.
func localAddress(listen string, port int) string {
	if listen == "" || listen == "0.0.0.0" || listen == "::" {
		listen = "127.0.0.1"
	}
	return net.JoinHostPort(listen, strconv.Itoa(port))
}

// serverValue is a ServerSpec as a server.N value with its role and
// client part.
func serverValue(s server.ServerSpec) string {
	host := s.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	v := fmt.Sprintf("%s:%d:%d:participant", host, s.QuorumPort, s.ElectionPort)
	if s.Observer {
		v = fmt.Sprintf("%s:%d:%d:observer", host, s.QuorumPort, s.ElectionPort)
	}
	if s.ClientPort != 0 {
		addr := s.ClientAddr
		if addr == "" {
			addr = "0.0.0.0"
		}
		v += fmt.Sprintf(";%s:%d", addr, s.ClientPort)
	}
	return v
}

// hasData reports whether the server has a history on disk: a txn log or
// a snapshot file in ZooKeeper's version-2 directories.
func hasData(dataDir, dataLogDir string) bool {
	for _, d := range []struct{ dir, prefix string }{{dataLogDir, "log."}, {dataDir, "snapshot."}} {
		entries, err := os.ReadDir(filepath.Join(d.dir, "version-2"))
		if err != nil {
			continue
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), d.prefix) {
				return true
			}
		}
	}
	return false
}

// LoadMembers reads MembersFile from dataDir; ok is false when there is
// none.
func LoadMembers(dataDir string) (e Ensemble, ok bool, err error) {
	path := filepath.Join(dataDir, MembersFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Ensemble{Members: map[int]Member{}}, false, nil
	}
	if err != nil {
		return Ensemble{}, false, fmt.Errorf("autojoin: %w", err)
	}
	if e, err = ParseEnsemble(string(b)); err != nil {
		return Ensemble{}, false, fmt.Errorf("autojoin: %s: %w", path, err)
	}
	return e, true, nil
}

// SaveMembers writes e to dataDir's MembersFile durably: a temporary file,
// fsync, rename, fsync of the directory, so a crash leaves the old file or
// the new one.
func SaveMembers(dataDir string, e Ensemble) error {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("autojoin: %w", err)
	}
	path := filepath.Join(dataDir, MembersFile)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("autojoin: %w", err)
	}
	_, werr := f.WriteString(e.String())
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("autojoin: save %s: %w", path, werr)
	}
	d, err := os.Open(dataDir)
	if err != nil {
		return fmt.Errorf("autojoin: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("autojoin: fsync %s: %w", dataDir, err)
	}
	return nil
}
