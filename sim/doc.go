// Package sim is zabkeeper's seeded deterministic simulator, in the manner
// of FoundationDB's simulation and TigerBeetle's VOPR.
//
// One goroutine runs everything: a virtual clock, one event queue ordered by
// (virtual time, sequence number), and one PRNG seeded from Options.Seed.
// Real engine.Node replicas run on a simulated network (netstub.Network).
// Every peer message crosses it as the bytes netstub/zktcp writes and is
// decoded by the code zktcp reads with: ZooKeeper's election frames and
// quorum packets through a zklink.Link pair per simulated connection,
// opened and closed by zktcp's rules (zklink.Conns), SNAP bodies through
// quorum.CopySnapshotBody, with ZooKeeper's own COMMIT and ACK order checks
// on each connection (wire.go). Each server is native (its links announce
// every capability in a hello) or ZooKeeper-like (no hello), drawn per seed,
// and restarts may switch it (kinds.go).
// Each machine keeps its durable state with the real disk package (disk.Log,
// snapshots, epoch files, disk.Recover) on its own disk.MemFS, which a crash
// rolls back to what was synced, so restarts run the recovery code users
// run; fsyncs complete in virtual time, fsync errors are injected through
// disk.WithFaults, and corruption must be refused or leave only records that
// were logged (storage.go). Each Ready batch is carried out through
// engine.Ready.Handle, as the server does, by a handler for the simulated
// machine (server.go). Client sessions, written as goroutine-free state
// machines, run random ZooKeeper workloads against them while faults are
// injected; on a third of the seeds read-only mode is on and read-only
// clients check its rules (readonly.go). Swarm testing: every seed draws its
// own cluster shape and fault probabilities, so some seeds are calm and some
// are storms.
//
// Besides faults at random times, faults are aimed at protocol steps the
// simulator sees in the replicas' Ready batches and role changes (a leader
// just established or just past NEWLEADER, a follower just past its ACK, a
// learner mid-sync): crashes, isolations and power losses of a majority or
// of every server, with slow disks widening the window between a write and
// its fsync (targeted.go).
//
// After every step the observable invariants of DESIGN.md are checked
// (check.go), so are the durability promises each message makes (an ACK
// only for fsynced proposals, obligations.go) and every watch event a
// client receives against the committed txns (watch.go). A run stops at its
// first violation. Otherwise a liveness phase at the end heals everything
// and requires a leader and service for every client within a bound, and
// the recorded client history goes through the linearizability checker. A
// replica's panic fails the seed with its stack. The same seed always gives
// the same run: Report.TraceHash hashes every event in order and, at the
// end, every file on every machine's disk (Report.DiskDigest).
//
// Purity of the simulated path: no wall clock, no goroutines, no map
// iteration order in any decision, no randomness but the seeded PRNG.
package sim
