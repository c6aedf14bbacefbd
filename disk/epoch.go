package disk

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// maxEpochFileSize bounds what ReadEpochFile reads.
const maxEpochFileSize = 64

// WriteEpochFile durably replaces the file at path with v in ASCII decimal,
// as ZooKeeper writes acceptedEpoch and currentEpoch: to a temporary file,
// fsynced, renamed over path, and the directory fsynced.
func WriteEpochFile(path string, v int64) error { return WriteEpochFileFS(nil, path, v) }

// WriteEpochFileFS is WriteEpochFile on fsys (nil means OSFS).
func WriteEpochFileFS(fsys FS, path string, v int64) (err error) {
	fsys = orOS(fsys)
	tmp := path + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("disk: create %s: %w", tmp, err)
	}
	if _, err := f.Write([]byte(strconv.FormatInt(v, 10))); err != nil {
		_ = f.Close()
		_ = fsys.Remove(tmp)
		return fmt.Errorf("disk: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		_ = fsys.Remove(tmp)
		return fmt.Errorf("disk: sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		_ = fsys.Remove(tmp)
		return fmt.Errorf("disk: close %s: %w", tmp, err)
	}
	if err := fsys.Rename(tmp, path); err != nil {
		_ = fsys.Remove(tmp)
		return fmt.Errorf("disk: rename %s: %w", tmp, err)
	}
	if err := fsys.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("disk: sync dir of %s: %w", path, err)
	}
	return nil
}

// ReadEpochFile reads a value written by WriteEpochFile (or by ZooKeeper).
// ok is false, with no error, when the file does not exist.
func ReadEpochFile(path string) (v int64, ok bool, err error) { return ReadEpochFileFS(nil, path) }

// ReadEpochFileFS is ReadEpochFile on fsys (nil means OSFS).
func ReadEpochFileFS(fsys FS, path string) (v int64, ok bool, err error) {
	f, err := orOS(fsys).OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("disk: open %s: %w", path, err)
	}
	defer f.Close()
	buf := make([]byte, maxEpochFileSize+1)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, false, fmt.Errorf("disk: read %s: %w", path, err)
	}
	v, err = parseEpoch(buf[:n])
	if err != nil {
		return 0, false, fmt.Errorf("disk: epoch file %s: %w", path, err)
	}
	return v, true, nil
}

// parseEpoch decodes an epoch file's contents: ASCII decimal, with
// surrounding white space (a trailing newline) allowed.
func parseEpoch(b []byte) (int64, error) {
	if len(b) > maxEpochFileSize {
		return 0, fmt.Errorf("longer than %d bytes: %w", maxEpochFileSize, ErrCorrupt)
	}
	s := strings.TrimSpace(string(b))
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || s == "" || s[0] == '+' {
		return 0, fmt.Errorf("not a decimal number: %q: %w", s, ErrCorrupt)
	}
	return v, nil
}

// The epoch files ZAB keeps, named as ZooKeeper names them.
const (
	AcceptedEpochFile = "acceptedEpoch"
	CurrentEpochFile  = "currentEpoch"
)

// EpochFilePath returns where ZooKeeper keeps an epoch file of a data
// directory: <dataDir>/version-2/<name> (QuorumPeer.loadDataBase, beside
// the snapshots).
func EpochFilePath(dataDir, name string) string {
	return filepath.Join(dataDir, versionDir, name)
}
