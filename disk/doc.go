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
// all big-endian. A snapshot is the magic "ZKSN", a uint32 version and the
// int64 zxid, then the body, then a trailer of the uint64 body length and a
// uint32 CRC-32C over everything before the CRC.
//
// Every file operation goes through the FS interface, so tests and the
// simulator can run the same code on MemFS, which loses unsynced writes on
// Crash, and inject failures with WithFaults.
package disk
