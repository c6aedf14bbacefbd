// Package faults holds the real-process fault harness: its test starts
// zabkeeper ensembles of 3 and 5 processes whose peer links run through
// netstub.Proxy, drives concurrent go-zk clients while killing, stopping,
// partitioning, slowing down and wiping servers, and checks the recorded
// history with the linearizability package; with -faults.reconfig it also
// changes the membership with reconfigs while the process faults run
// (reconfig_test.go). Run it with
//
//	go test ./faults -faults.duration=2m -v
//
// (TESTING.md lists the flags and explains a failure). The package has no
// non-test code; the recorded go-zk sessions, the reply tap and the
// acknowledged-writes check it shares with deploy/dockertest live in
// faults/load.
package faults
