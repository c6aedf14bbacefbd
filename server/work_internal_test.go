package server

import "testing"

// Work only grows: srst resets the packet count srvr shows, and the Ps
// controller, which compares Work's rate before and after a probe, must
// not see that as work undone.
func TestWorkSurvivesSrst(t *testing.T) {
	var s Server
	s.stats.reset()
	s.stats.received.Add(5)
	s.txnsLogged.Add(3)
	if got := s.Work(); got != 8 {
		t.Fatalf("Work = %d, want 8 (5 packets, 3 txns)", got)
	}
	s.stats.reset()
	if got := s.stats.received.Load(); got != 0 {
		t.Errorf("packets after srst = %d, want 0", got)
	}
	if got := s.Work(); got != 8 {
		t.Errorf("Work after srst = %d, want 8", got)
	}
	s.stats.received.Add(2)
	if got := s.Work(); got != 10 {
		t.Errorf("Work = %d, want 10", got)
	}
}
