// Package disk keeps zabkeeper's durable state on files: the write-ahead
// transaction log, snapshots of the data tree, and the small epoch files ZAB
// needs. It knows nothing of what a transaction means: payloads are opaque
// bytes keyed by a zxid (epoch<<32 | counter) that strictly increases along
// the log.
//
// The on-disk layout follows ZooKeeper's habit. Under a log directory,
// <dir>/version-2/log.<first zxid in lowercase hex> holds segments of the
// log; under a data directory, <dir>/version-2/snapshot.<zxid in hex> holds
// snapshots. The two directories may be the same.
//
// A log segment starts with an 8-byte header, the magic "ZKLG" and a
// big-endian uint32 version, followed by records:
//
//	uint32 length of (zxid + data)
//	uint32 CRC-32C (Castagnoli) of (zxid + data)
//	int64  zxid
//	[]byte data
//
// all big-endian. A snapshot is Apache ZooKeeper's version-2 snapshot file,
// optionally .gz or .snappy (see snapshot.go): the engine writes the stream,
// disk compresses, verifies its Adler-32 seals, names and purges the files.
//
// Every file operation goes through the FS interface, so tests and the
// simulator can run the same code on MemFS, which loses unsynced writes on
// Crash, and inject failures with WithFaults.
package disk
