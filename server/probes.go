package server

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/server/admin"
)

// DefaultLivenessTimeout is how long the event loop may go without turning
// before /livez fails (or three ticks, if that is longer: an idle loop turns
// once a tick). A slow disk (the loop waits on fsync before writing epochs
// or installing a leader's snapshot) or a long election never stops it for
// this long, so a kubelet restarts only a server that is truly stuck.
const DefaultLivenessTimeout = 60 * time.Second

// livenessTimeout is DefaultLivenessTimeout, or three ticks if longer.
func livenessTimeout(tickMs int) time.Duration {
	return max(DefaultLivenessTimeout, 3*time.Duration(tickMs)*time.Millisecond)
}

// figuresEvery is how often the event loop refreshes the figures /metrics
// reads, so a scrape never waits for (or walks anything on) the loop.
const figuresEvery = 500 * time.Millisecond

// readiness is what /readyz reports, as the loop last saw it.
type readiness struct {
	ok     bool
	reason string
}

// newMetrics creates this server's own Prometheus registry: one per server,
// so several servers in one process (tests) never collide. It holds the Go
// runtime and process collectors, the event histograms and the mntr figures.
func (s *Server) newMetrics() {
	s.registry = prometheus.NewRegistry()
	s.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		admin.NewFigureCollector(s.metricFigures),
	)
	s.metrics = admin.NewMetrics(s.registry)
}

// Registry returns the server's Prometheus registry, what /metrics serves.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// openAdmin binds the admin listener when admin.enableServer is on.
func (s *Server) openAdmin() error {
	if !s.cfg.AdminEnableServer {
		return nil
	}
	addr := net.JoinHostPort(s.cfg.AdminServerAddress, strconv.Itoa(s.cfg.AdminServerPort))
	a, err := admin.Listen(addr, adminSource{s}, s.registry, s.log.With("component", "admin"), admin.DefaultLimits())
	if err != nil {
		return fmt.Errorf("server: admin.serverPort: %w", err)
	}
	s.admin = a
	return nil
}

// AdminAddr returns the address the admin listener is bound to, nil when
// admin.enableServer is off.
func (s *Server) AdminAddr() net.Addr {
	if s.admin == nil {
		return nil
	}
	return s.admin.Addr()
}

// publish records, once per turn of the event loop, that the loop is alive
// and whether the server is ready; every figuresEvery it also refreshes the
// figures for /metrics. Everything it reads is cheap and already counted.
func (s *Server) publish(st zab.Status, now time.Time) {
	s.beat.Store(now.UnixNano())
	r := s.readinessNow(st)
	if old := s.readiness.Load(); old == nil || *old != r {
		changed := r // allocated on a change only (r stored escaped every turn)
		s.readiness.Store(&changed)
	}
	if now.Sub(s.figuresAt) >= figuresEvery {
		s.figuresAt = now
		info := s.serverInfo("")
		s.figures.Store(&info)
	}
}

// readinessNow decides readiness from the Node and its protocol status st.
func (s *Server) readinessNow(st zab.Status) readiness {
	return readinessOf(len(s.cfg.Servers) == 0, s.node.ReadOnly(), s.node.Serving(), st)
}

// readinessOf is ready for a standalone server, or an established leader,
// follower or observer serving clients; otherwise it names the state:
// read-only, looking, or syncing (a leader waiting for its quorum to sync,
// a learner not yet UPTODATE).
func readinessOf(standalone, readOnly, serving bool, st zab.Status) readiness {
	switch {
	case standalone:
		return readiness{ok: true}
	case readOnly:
		return readiness{reason: "read-only: cut off from the quorum, serving read-only clients only"}
	case st.Role == zab.Looking:
		return readiness{reason: "looking: electing a leader"}
	case !st.Established || !serving:
		return readiness{reason: "syncing: " + st.Role.String() + " not yet synchronized with the ensemble"}
	}
	return readiness{ok: true}
}

// live is /livez: the loop turned within the liveness timeout.
func (s *Server) live() (bool, string) {
	last := time.Unix(0, s.beat.Load())
	if since := time.Since(last); since > s.livenessTimeout {
		return false, fmt.Sprintf("event loop stalled: last turned %s ago", since.Round(time.Millisecond))
	}
	return true, ""
}

// ready is /readyz.
func (s *Server) ready() (bool, string) {
	select {
	case <-s.done:
		return false, "shutting down"
	default:
	}
	r := s.readiness.Load()
	if r == nil {
		return false, "starting: the event loop has not run yet"
	}
	return r.ok, r.reason
}

// metricFigures turns the last published figures into gauges under mntr's
// names (ZooKeeper's Prometheus provider uses the same names); the server
// state becomes a labelled gauge.
func (s *Server) metricFigures() []admin.Figure {
	info := s.figures.Load()
	if info == nil {
		return nil
	}
	in := *info
	in.Uptime = time.Since(s.startedAt)
	var out []admin.Figure
	for _, v := range monitorValues(in) {
		switch {
		case v.numeric:
			out = append(out, admin.Figure{Name: v.key, Value: v.num})
		case v.key == "server_state":
			out = append(out, admin.Figure{Name: "server_state", Value: 1, Label: "state", LabelValue: v.text})
		}
	}
	return out
}

// roleTimer times elections and synchronizations for the histograms:
// looking until a leader is found, then until the server serves.
type roleTimer struct {
	looking, syncing time.Time
}

func (r *roleTimer) observe(s *Server, st zab.Status, now time.Time) {
	switch {
	case st.Role == zab.Looking:
		if r.looking.IsZero() {
			r.looking = now
		}
		r.syncing = time.Time{}
	case !st.Established:
		if !r.looking.IsZero() {
			s.metrics.Election.Observe(now.Sub(r.looking).Seconds())
			r.looking = time.Time{}
		}
		if r.syncing.IsZero() {
			r.syncing = now
		}
	default:
		if !r.looking.IsZero() {
			s.metrics.Election.Observe(now.Sub(r.looking).Seconds())
			r.looking = time.Time{}
			r.syncing = now
		}
		if !r.syncing.IsZero() {
			s.metrics.Sync.Observe(now.Sub(r.syncing).Seconds())
			r.syncing = time.Time{}
		}
	}
}

// commitTimer measures proposal-to-commit: when each txn entered the log,
// until the tree applied it.
type commitTimer struct {
	zxids []int64
	at    []time.Time
}

func (c *commitTimer) proposed(zxid int64, now time.Time) {
	c.zxids = append(c.zxids, zxid)
	c.at = append(c.at, now)
}

// committed observes every txn up to applied; reset drops the rest (their
// log was truncated or replaced).
func (c *commitTimer) committed(applied int64, now time.Time, h prometheus.Histogram) {
	i := 0
	for i < len(c.zxids) && c.zxids[i] <= applied {
		h.Observe(now.Sub(c.at[i]).Seconds())
		i++
	}
	if i > 0 {
		c.zxids = append(c.zxids[:0], c.zxids[i:]...)
		c.at = append(c.at[:0], c.at[i:]...)
	}
}

func (c *commitTimer) reset() { c.zxids, c.at = c.zxids[:0], c.at[:0] }
