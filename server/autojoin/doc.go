// Package autojoin lets a server join a running ensemble by itself, so a
// StatefulSet scaled up needs no hand-run command: with zabkeeper.autojoin
// on, `zabkeeper server` reads the ensemble's configuration
// (/zookeeper/config) from running members before it starts, asks for
// itself to be added as an observer (an incremental reconfig conditional on
// the version it read), starts on those members, waits until it has caught
// up, and asks to be made a participant. It speaks to the ensemble only
// through ZooKeeper's client protocol (go-zk), so it works against any
// server that carries out reconfig, Apache ZooKeeper 3.5+ included.
//
// Every step reads first and does nothing when already done, and a lost
// race (BadVersion, ReconfigInProgress) is retried from a fresh read with
// backoff. The members a server last ran with are kept in its dataDir
// (MembersFile), which tells a restart (nothing to do) from a removal by
// an operator (never undone by itself). Joiner.Remove is the scale-down
// step behind `zabkeeper members remove`.
package autojoin
