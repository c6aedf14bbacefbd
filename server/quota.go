package server

import "time"

// quotaLogEvery bounds how often quota excesses are logged, as ZooKeeper's
// RATE_LOGGER does: a client writing past a limit in a loop would
// otherwise flood the log.
const quotaLogEvery = time.Second

// logQuotaWarnings logs the quota excesses the engine noticed while
// preparing writes: at most one line per quotaLogEvery, counting the rest.
func (s *Server) logQuotaWarnings() {
	ws := s.node.TakeQuotaWarnings()
	if len(ws) == 0 {
		return
	}
	now := time.Now()
	if now.Sub(s.quotaLogged) < quotaLogEvery {
		s.quotaSuppressed += len(ws)
		return
	}
	w := ws[len(ws)-1]
	s.log.Warn(w.String(), "quota", w.Quota, "path", w.Path, "hard", w.Hard, "refused", w.Denied,
		"more_since_last_line", s.quotaSuppressed+len(ws)-1)
	s.quotaLogged, s.quotaSuppressed = now, 0
}
