// Package engine is zabkeeper's pure replica core: the data tree, the session
// tracker and the request pipeline behind one event-driven Node.
//
// Nothing in this package (or below it) starts a goroutine, reads a clock,
// touches a socket or a file, or draws from a global random source. Time
// enters as the Time stamp of each input and as Tick; the disk and the network
// are messages in Ready and acknowledgements through Persisted and Step. The
// caller — the real server or the simulator — owns every goroutine, socket,
// file and clock, so the same code serves real clients and replays a seed bit
// for bit. purity_test.go enforces the boundary.
package engine
