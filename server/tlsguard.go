package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Pacing of the log lines of failed and refused TLS handshakes: a burst of
// handshakeLogBurst lines, then one per handshakeLogEvery; each line says
// how many were left out since the previous one.
const (
	handshakeLogBurst = 10
	handshakeLogEvery = time.Second
)

// tlsHandshakes are the figures and log pacing of the TLS handshakes of
// the client ports (mntr zk_outstanding_tls_handshake,
// zk_tls_handshake_exceeded and zk_unsuccessful_handshake, ZooKeeper's
// names). Safe from any goroutine.
type tlsHandshakes struct {
	// outstanding counts the connections of a TLS or unified port that
	// have not finished their TLS phase yet.
	outstanding atomic.Int64
	// exceeded counts the connections closed because outstanding was at
	// the limit; failed the handshakes that failed.
	exceeded, failed atomic.Int64
	// failLog and refuseLog pace the Warn lines of each kind.
	failLog, refuseLog logPacer
}

// handshakeError marks a failure of a connection's TLS phase that counts
// as an unsuccessful handshake. A connection that hangs up before sending
// a byte (a TCP health check) is not one.
type handshakeError struct{ err error }

func (e *handshakeError) Error() string { return e.err.Error() }
func (e *handshakeError) Unwrap() error { return e.err }

// admitHandshake takes a handshake slot for a connection of a port that
// speaks TLS; false means the cap (outstandingHandshake.limit) is reached
// and the connection must be closed. Plain ports need no slot.
func (s *Server) admitHandshake(c *clientConn) bool {
	if c.mode == modePlain {
		return true
	}
	n := s.tlsHS.outstanding.Add(1)
	if limit := s.cfg.TLS.OutstandingHandshakeLimit; limit > 0 && n > int64(limit) {
		s.tlsHS.outstanding.Add(-1)
		s.tlsHS.exceeded.Add(1)
		return false
	}
	c.handshakeSlot = true
	return true
}

// releaseHandshake gives back the connection's slot once its TLS phase is
// over, whatever the outcome.
func (c *clientConn) releaseHandshake() {
	if c.handshakeSlot {
		c.handshakeSlot = false
		c.srv.tlsHS.outstanding.Add(-1)
	}
}

// handshakeRefused logs (paced) a connection closed at the handshake cap.
func (s *Server) handshakeRefused(c *clientConn) {
	ok, skipped := s.tlsHS.refuseLog.allow(time.Now())
	if !ok {
		return
	}
	attrs := []any{"remote", c.remote, "listener", c.mode.String(), "limit", s.cfg.TLS.OutstandingHandshakeLimit}
	if skipped > 0 {
		attrs = append(attrs, "suppressed_since_last_line", skipped)
	}
	s.log.Warn("TLS handshake refused: too many in progress; closing connection", attrs...)
}

// secureFailed counts and logs the failure of a connection's TLS phase. A
// probe that connects and hangs up is no news (Debug); a failed handshake
// is a Warn line, paced so that a flood of bad clients cannot flood the
// log.
func (c *clientConn) secureFailed(err error) {
	var he *handshakeError
	if errors.As(err, &he) {
		c.srv.tlsHS.failed.Add(1)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		c.log.Debug("closing connection", "listener", c.mode.String(), "err", err)
		return
	}
	ok, skipped := c.srv.tlsHS.failLog.allow(time.Now())
	if !ok {
		return
	}
	attrs := []any{"listener", c.mode.String(), "err", err}
	if skipped > 0 {
		attrs = append(attrs, "suppressed_since_last_line", skipped)
	}
	c.log.Log(context.Background(), slog.LevelWarn, "closing connection", attrs...)
}

// logPacer lets through a burst of handshakeLogBurst lines, then one per
// handshakeLogEvery (a token bucket), and counts the lines it held back
// since the last one it let through. Its zero value is ready.
type logPacer struct {
	mu         sync.Mutex
	tokens     float64
	last       time.Time
	suppressed int
}

// allow reports whether a line may be logged at now and, when it may, how
// many were suppressed since the previous one.
func (p *logPacer) allow(now time.Time) (ok bool, suppressed int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last.IsZero() {
		p.tokens = handshakeLogBurst
	} else if d := now.Sub(p.last); d > 0 {
		p.tokens = min(handshakeLogBurst, p.tokens+float64(d)/float64(handshakeLogEvery))
	}
	p.last = now
	if p.tokens < 1 {
		p.suppressed++
		return false, 0
	}
	p.tokens--
	suppressed, p.suppressed = p.suppressed, 0
	return true, suppressed
}
