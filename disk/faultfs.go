package disk

import (
	"errors"
	"io/fs"
	"sync"
)

// Op names a file system operation, for fault injection.
type Op int

// The operations a fault hook sees.
const (
	OpOpen     Op = iota // FS.OpenFile
	OpWrite              // File.Write
	OpReadAt             // File.ReadAt
	OpSync               // File.Sync (fsync)
	OpTruncate           // File.Truncate
	OpStat               // File.Stat
	OpClose              // File.Close
	OpRename             // FS.Rename
	OpRemove             // FS.Remove
	OpReadDir            // FS.ReadDir
	OpMkdirAll           // FS.MkdirAll
	OpSyncDir            // FS.SyncDir
)

var opNames = [...]string{"open", "write", "readat", "sync", "truncate", "stat", "close", "rename", "remove", "readdir", "mkdirall", "syncdir"}

// String returns the operation's lowercase name.
func (o Op) String() string {
	if o >= 0 && int(o) < len(opNames) {
		return opNames[o]
	}
	return "op?"
}

// ErrInjected is the error FailNext injects.
var ErrInjected = errors.New("disk: injected fault")

// Hook decides the fate of one operation before it runs: a nil result lets
// it run, an error fails it without touching the underlying FS. A Hook may
// also count or delay operations. It is called concurrently.
type Hook func(op Op, path string) error

// WithFaults wraps fsys so that hook is consulted before every operation,
// on the FS and on every File opened through it. The model is pebble's
// errorfs, kept small.
func WithFaults(fsys FS, hook Hook) FS {
	return &faultFS{fs: orOS(fsys), hook: hook}
}

// FailNext returns a Hook that fails the next operation op (on any path)
// with ErrInjected and lets everything else through.
func FailNext(op Op) Hook {
	var once sync.Once
	return func(o Op, _ string) error {
		if o != op {
			return nil
		}
		var err error
		once.Do(func() { err = ErrInjected })
		return err
	}
}

type faultFS struct {
	fs   FS
	hook Hook
}

func (f *faultFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	if err := f.hook(OpOpen, name); err != nil {
		return nil, err
	}
	file, err := f.fs.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{f: file, name: name, hook: f.hook}, nil
}

func (f *faultFS) Rename(oldpath, newpath string) error {
	if err := f.hook(OpRename, oldpath); err != nil {
		return err
	}
	return f.fs.Rename(oldpath, newpath)
}

func (f *faultFS) Remove(name string) error {
	if err := f.hook(OpRemove, name); err != nil {
		return err
	}
	return f.fs.Remove(name)
}

func (f *faultFS) ReadDir(name string) ([]string, error) {
	if err := f.hook(OpReadDir, name); err != nil {
		return nil, err
	}
	return f.fs.ReadDir(name)
}

func (f *faultFS) MkdirAll(path string, perm fs.FileMode) error {
	if err := f.hook(OpMkdirAll, path); err != nil {
		return err
	}
	return f.fs.MkdirAll(path, perm)
}

func (f *faultFS) SyncDir(path string) error {
	if err := f.hook(OpSyncDir, path); err != nil {
		return err
	}
	return f.fs.SyncDir(path)
}

type faultFile struct {
	f    File
	name string
	hook Hook
}

func (f *faultFile) Write(p []byte) (int, error) {
	if err := f.hook(OpWrite, f.name); err != nil {
		return 0, err
	}
	return f.f.Write(p)
}

func (f *faultFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.hook(OpReadAt, f.name); err != nil {
		return 0, err
	}
	return f.f.ReadAt(p, off)
}

func (f *faultFile) Sync() error {
	if err := f.hook(OpSync, f.name); err != nil {
		return err
	}
	return f.f.Sync()
}

func (f *faultFile) Truncate(size int64) error {
	if err := f.hook(OpTruncate, f.name); err != nil {
		return err
	}
	return f.f.Truncate(size)
}

func (f *faultFile) Stat() (fs.FileInfo, error) {
	if err := f.hook(OpStat, f.name); err != nil {
		return nil, err
	}
	return f.f.Stat()
}

func (f *faultFile) Close() error {
	if err := f.hook(OpClose, f.name); err != nil {
		_ = f.f.Close()
		return err
	}
	return f.f.Close()
}
