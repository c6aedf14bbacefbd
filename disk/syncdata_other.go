//go:build !linux

package disk

// syncData makes a log segment's data durable (fsync where fdatasync is
// not available).
func syncData(f File) error { return f.Sync() }
