//go:build !linux

package disk

// snapshotFileWriter returns the buffered writer a snapshot is written to f
// through, and the function that releases it once the snapshot is flushed:
// the file's fsync writes it back.
func snapshotFileWriter(f File) (snapFileWriter, func()) { return bufferedSnapshotWriter(f) }
