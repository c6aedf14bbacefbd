// Package netstub carries ZAB messages between servers: the Transport
// interface the runtime and the simulator share, a deterministic in-memory
// Network driven by a virtual clock (no goroutines), and a channel-based
// MemTransport on top of it for tests that run servers on goroutines.
package netstub
