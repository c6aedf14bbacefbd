// Package disk keeps zabkeeper's durable state on files: the write-ahead
// transaction log, snapshots of the data tree, and the small epoch files ZAB
// needs. It knows of a transaction only its zxid (epoch<<32 | counter), read
// from the TxnHeader its payload starts with; the zxids strictly increase
// along the log.
//
// The transaction log is Apache ZooKeeper's own, version 2, so that either
// server reads the other's: under a log directory (ZooKeeper's dataLogDir),
// <dir>/version-2/log.<zxid of the file's first txn, lowercase hex> holds a
// FileHeader {int magic "ZKLG"; int version 2; long dbid 0}, then records
//
//	long  Adler32 of the payload
//	int   payload length
//	      payload: TxnHeader, txn record, TxnDigest (see engine/tree)
//	byte  'B'
//
// all big-endian, then zeros: files are preallocated (LogOptions.PreallocSize,
// ZooKeeper's 64 MiB preAllocSize). A zero length, the end of the file or a
// record a crash cut short ends a file's data, as ZooKeeper reads it; a new
// file starts at the first append after opening the log or truncating it.
// The epoch files acceptedEpoch and currentEpoch are ASCII decimal, in
// <dataDir>/version-2 (EpochFilePath). A snapshot is Apache ZooKeeper's
// version-2 snapshot file, <dataDir>/version-2/snapshot.<zxid in hex>,
// optionally .gz or .snappy (see snapshot.go): the engine writes the stream,
// disk compresses, verifies its Adler-32 seals, names and purges the files.
//
// Every file operation goes through the FS interface, so tests and the
// simulator can run the same code on MemFS, which loses unsynced writes on
// Crash, and inject failures with WithFaults.
package disk
