package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"
)

// Backoff between attempts to bind a listener whose address does not
// resolve, or not to this machine, yet.
const (
	listenBackoffMin = 100 * time.Millisecond
	listenBackoffMax = 5 * time.Second
)

// lookupHostFunc resolves a host name; net.DefaultResolver.LookupHost
// outside tests.
type lookupHostFunc func(ctx context.Context, host string) ([]string, error)

// listen binds a TCP listener on host:port. When retry is set, a host name
// that does not resolve yet, or resolves to an address this machine does not
// have yet, is retried with backoff (logged) until it binds or ctx ends: a
// Kubernetes pod's own headless-service name appears in DNS only once the
// pod is about ready, and a stale record may still point at its previous
// IP. Any other error is returned at once.
func (s *Server) listen(ctx context.Context, retry bool, what, host string, port int) (net.Listener, error) {
	backoff := listenBackoffMin
	for attempt := 1; ; attempt++ {
		ln, err := s.listenOnce(ctx, host, port)
		if err == nil {
			if attempt > 1 {
				s.log.Info("listener bound", "listener", what, "host", host, "addr", ln.Addr().String(), "attempts", attempt)
			}
			return ln, nil
		}
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		if !retry || !retryableListenError(err) {
			return nil, fmt.Errorf("server: %s listener on %s: %w", what, addr, err)
		}
		s.log.Warn("cannot bind yet, retrying", "listener", what, "addr", addr, "attempt", attempt,
			"retryIn", backoff, "err", err)
		timer := time.NewTimer(backoff)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("server: %s listener on %s: stopped while waiting (%w): %w", what, addr, ctx.Err(), err)
		}
		backoff = min(2*backoff, listenBackoffMax)
	}
}

// listenOnce resolves host itself (so tests can inject the resolver) and
// binds its first IPv4 address, else its first address, as net.Listen does
// with a name.
func (s *Server) listenOnce(ctx context.Context, host string, port int) (net.Listener, error) {
	ip := host
	if host != "" && net.ParseIP(host) == nil {
		addrs, err := s.lookupHost(ctx, host)
		if err != nil {
			return nil, err
		}
		if len(addrs) == 0 {
			return nil, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
		}
		ip = addrs[0]
		for _, a := range addrs {
			if p := net.ParseIP(a); p != nil && p.To4() != nil {
				ip = a
				break
			}
		}
	}
	return net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
}

// retryableListenError tells the bind failures that time may cure: a name
// not (yet) in DNS, a DNS timeout, or an address not (yet) on this machine.
func retryableListenError(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) || errors.Is(err, syscall.EADDRNOTAVAIL)
}

// openClientListeners binds the client port (clientPortAddress:clientPort,
// unless ClientPort is -1) and, when configured, the TLS client port
// (secureClientPortAddress:secureClientPort, the address defaulting to
// clientPortAddress), side by side.
func (s *Server) openClientListeners(ctx context.Context, retry bool) error {
	if s.cfg.ClientPort >= 0 {
		ln, err := s.listen(ctx, retry, "client", s.cfg.ClientPortAddress, s.cfg.ClientPort)
		if err != nil {
			return err
		}
		s.ln = ln
	}
	t := s.cfg.TLS
	if t.SecureClientPort < 0 {
		return nil
	}
	addr := t.SecureClientPortAddress
	if addr == "" {
		addr = s.cfg.ClientPortAddress
	}
	sln, err := s.listen(ctx, retry, "secure client", addr, t.SecureClientPort)
	if err != nil {
		if s.ln != nil {
			_ = s.ln.Close()
		}
		return err
	}
	s.secureLn = sln
	return nil
}

// closeClientListeners stops taking clients on every client port.
func (s *Server) closeClientListeners() {
	if s.ln != nil {
		_ = s.ln.Close()
	}
	if s.secureLn != nil {
		_ = s.secureLn.Close()
	}
}

// plainMode is what the client port speaks: plain text, or with
// client.portUnification TLS as well.
func (s *Server) plainMode() connMode {
	if s.cfg.TLS.PortUnification {
		return modeUnified
	}
	return modePlain
}

// SecureAddr returns the address the TLS client listener is bound to, nil
// without one.
func (s *Server) SecureAddr() net.Addr {
	if s.secureLn == nil {
		return nil
	}
	return s.secureLn.Addr()
}

// confProperties are conf's pairs with the ports actually bound, as
// ZooKeeper's dumpConf prints its listeners' local ports: clientPort and
// secureClientPort are -1 without that listener, never the 0 that asked
// the operating system for a free port.
func (s *Server) confProperties() [][2]string {
	props := s.cfg.Properties()
	bound := func(ln net.Listener) string {
		if ln == nil {
			return "-1"
		}
		if a, ok := ln.Addr().(*net.TCPAddr); ok {
			return strconv.Itoa(a.Port)
		}
		return "-1"
	}
	for i, kv := range props {
		switch kv[0] {
		case "clientPort":
			props[i][1] = bound(s.ln)
		case "secureClientPort":
			props[i][1] = bound(s.secureLn)
		}
	}
	return props
}
