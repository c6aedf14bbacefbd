//go:build !linux

package loadgen

import "sync"

// startLeanDrivers is the event loop of the lean sessions where there is
// one (leanloop_linux.go); elsewhere every session runs on its own
// goroutine.
func (r *runner) startLeanDrivers(*sync.WaitGroup) bool { return false }
