// Package load is the client side that the real-process fault harness
// (faults/) and the container test (deploy/dockertest/) share: go-zk
// sessions whose every call is recorded as a linearizability.Op with its
// call and return times (Session.Do), a tap under go-zk's dialer that reads
// each reply's zxid off the wire (Tap), the Recorder that collects the
// history and the sessions seen to expire, the mapping of go-zk's errors to
// ZooKeeper codes, and the checks run on a finished history beside
// Porcupine (AckedWritesLost).
//
// What each test does with the sessions (its workload, its faults) stays in
// the test; this package holds only what both need, so the two cannot drift
// apart.
package load
