package disk

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// File is an open file as the disk package uses it.
//
// Files opened for writing are always written at their end: the package
// opens them with os.O_APPEND or writes them from the start after
// os.O_TRUNC or os.O_EXCL creation, and MemFS appends on every Write.
type File interface {
	io.Writer
	io.ReaderAt
	io.Closer
	// Sync makes the file's contents durable (fsync).
	Sync() error
	// Truncate changes the size of the file.
	Truncate(size int64) error
	// Stat describes the file; the package uses only the size.
	Stat() (fs.FileInfo, error)
}

// FS is the file system the package works on. OSFS is the real one; MemFS is
// an in-memory one that can crash; WithFaults wraps either to inject errors.
//
// Implementations must be safe for concurrent use, and a File must allow
// Write, Sync and ReadAt from different goroutines at once.
type FS interface {
	// OpenFile opens name with the os.O_* flags, like os.OpenFile.
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	// Rename atomically replaces newpath with oldpath. It is durable only
	// once the directories involved are synced.
	Rename(oldpath, newpath string) error
	// Remove deletes a file. It is durable only once the directory is
	// synced.
	Remove(name string) error
	// ReadDir returns the names of the entries of a directory, sorted.
	ReadDir(name string) ([]string, error)
	// MkdirAll creates a directory and any missing parents.
	MkdirAll(path string, perm fs.FileMode) error
	// SyncDir makes the creations, renames and removals in a directory
	// durable (fsync of the directory).
	SyncDir(path string) error
}

// OSFS is the FS of the operating system.
type OSFS struct{}

var _ FS = OSFS{}

// OpenFile implements FS.
func (OSFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Rename implements FS.
func (OSFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// Remove implements FS.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// ReadDir implements FS.
func (OSFS) ReadDir(name string) ([]string, error) {
	ents, err := os.ReadDir(name)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	sort.Strings(names)
	return names, nil
}

// MkdirAll implements FS.
func (OSFS) MkdirAll(path string, perm fs.FileMode) error { return os.MkdirAll(path, perm) }

// SyncDir implements FS.
func (OSFS) SyncDir(path string) error {
	d, err := os.Open(filepath.Clean(path))
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return err
	}
	return d.Close()
}

// orOS returns fsys, or OSFS when fsys is nil.
func orOS(fsys FS) FS {
	if fsys == nil {
		return OSFS{}
	}
	return fsys
}

// fileSize returns the size of f.
func fileSize(f File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
