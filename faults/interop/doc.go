// Package interop holds the interop tests with the real Apache ZooKeeper
// 3.8 (Debian's, through internal/zkreal) and the zabkeeper binary, run by
// `make interop`: a 3-server ZooKeeper ensemble under a recorded go-zk
// writer (faults/load) and a client holding an ephemeral, restarted one
// server at a time (the baseline), and, with -interop.swap and
// -interop.mixed, the same ensemble migrated to zabkeeper one server at a
// time (ZooKeeper's peer protocol is zabkeeper's default) and back, a zabkeeper
// ensemble swapped to ZooKeeper and back, and a mixed ensemble
// (zabkeeper leader, ZooKeeper follower and observer) under partitions and
// a leader SIGKILL; with -interop.native, the rolling restart and those
// faults on zabkeeper alone, for comparison. Every run checks that no acknowledged write is lost,
// that the ephemeral's session never expires, that every server serves the
// same tree with equal Stat fields, and that the history is linearizable;
// it prints the write pause of each step and the failover times in a
// table. TESTING.md says how to run it and read a failure.
//
// The package has no non-test code; it is kept apart from faults/ so that
// its JVM starts do not slow `make test`.
package interop
