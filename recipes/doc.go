// Package recipes implements the coordination recipes users run ZooKeeper
// for — locks, leader election, service discovery, configuration values,
// barriers, counters and queues — on github.com/go-zookeeper/zk, against any
// ZooKeeper-compatible server (zabkeeper or Apache ZooKeeper).
//
// The lock, read-write lock, semaphore, leader latch, service discovery and
// atomic counter use Apache Curator's node names, ordering and data formats,
// so a Go process and a Java process using Curator on the same path
// cooperate: they exclude each other, elect one leader between them and see
// each other's service instances.
//
// # Ownership signals
//
// Everything that grants ownership (a held lock, a lease, leadership) hands
// the owner a context.Context that is cancelled the moment ownership may be
// lost: when the client's connection is suspended (go-zk reports
// StateDisconnected, which it does within two thirds of the session timeout
// of hearing nothing, before the server can expire the session) or the
// session expires. It is never cancelled later than that, so work done while
// the context is live was done while the owner held the znode that grants
// ownership. Work that must not run without ownership should check the
// context (or pass it on) before every externally visible step.
//
// # Context
//
// Every method takes a context.Context that bounds its waits. go-zk has no
// per-request cancellation, so a single ZooKeeper request in flight finishes
// (or fails with a connection error within about a second of a disconnect)
// before the cancellation is seen.
package recipes
