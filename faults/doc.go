// Package faults holds the real-process fault harness: its test starts a
// three-server zabkeeper ensemble whose peer links run through
// netstub.Proxy, drives concurrent go-zk clients while killing, stopping and
// partitioning servers, and checks the recorded history with the
// linearizability package. Run it with
//
//	go test ./faults -faults.duration=2m -v
//
// The package has no non-test code.
package faults
