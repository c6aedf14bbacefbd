package disk

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// ErrCrashed is returned by operations on a MemFS file that was opened
// before the last Crash: the process that held it is gone.
var ErrCrashed = errors.New("disk: memfs: file handle from before a crash")

// MemFS is an in-memory FS that remembers what is durable and can Crash,
// losing what is not. It is for tests and the simulator.
//
// The model: a file's contents are durable up to its last Sync; a directory
// entry (creation, rename, removal) is durable once its directory is synced
// with SyncDir. Directories themselves are durable as soon as MkdirAll
// returns. Writes always append at the end of the file.
//
// MemFS is safe for concurrent use.
type MemFS struct {
	mu   sync.Mutex
	gen  int
	dirs map[string]*memDir
}

type memDir struct {
	entries map[string]*memNode // current
	durable map[string]*memNode // as of the last SyncDir
}

type memNode struct {
	// data is the current contents. Its bytes are never changed in place
	// (only appended to, or replaced by a new slice), so synced may share
	// its backing array.
	data   []byte
	synced []byte // contents as of the last Sync
}

var _ FS = (*MemFS)(nil)

// NewMemFS returns an empty MemFS holding only the root directory "/" and
// the current directory ".".
func NewMemFS() *MemFS {
	m := &MemFS{dirs: map[string]*memDir{}}
	m.dirs["/"] = newMemDir()
	m.dirs["."] = newMemDir()
	return m
}

func newMemDir() *memDir {
	return &memDir{entries: map[string]*memNode{}, durable: map[string]*memNode{}}
}

func (m *MemFS) lookupDir(op, name string) (*memDir, string, error) {
	name = CleanPath(name)
	dir, base := splitClean(name)
	d, ok := m.dirs[dir]
	if !ok {
		return nil, "", &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	return d, base, nil
}

// CleanPath is filepath.Clean, without its work for a name that is clean
// already, as the names the log and snapshot code build are: the
// simulator opens files often enough for Clean to show in its profile.
func CleanPath(p string) string {
	if isClean(p) {
		return p
	}
	return filepath.Clean(p)
}

// isClean reports whether filepath.Clean(p) == p for certain: p is not
// empty, has no empty, "." or ".." element and no trailing separator.
func isClean(p string) bool {
	if p == "" {
		return false
	}
	if p == "/" {
		return true
	}
	start := 0
	if p[0] == '/' {
		start = 1
	}
	for i := start; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			if e := p[start:i]; e == "" || e == "." || e == ".." {
				return false
			}
			start = i + 1
		}
	}
	return true
}

// splitClean is filepath.Dir and filepath.Base of a clean path.
func splitClean(p string) (dir, base string) {
	i := strings.LastIndexByte(p, '/')
	switch {
	case p == "/":
		return "/", "/"
	case i < 0:
		return ".", p
	case i == 0:
		return "/", p[1:]
	}
	return p[:i], p[i+1:]
}

// OpenFile implements FS. It honours O_CREATE, O_EXCL and O_TRUNC and the
// read/write access mode.
func (m *MemFS) OpenFile(name string, flag int, _ fs.FileMode) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, base, err := m.lookupDir("open", name)
	if err != nil {
		return nil, err
	}
	clean := CleanPath(name)
	if _, isDir := m.dirs[clean]; isDir {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("is a directory")}
	}
	n, ok := d.entries[base]
	switch {
	case ok && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	case !ok && flag&os.O_CREATE == 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	case !ok:
		n = &memNode{}
		d.entries[base] = n
	}
	writable := flag&(os.O_WRONLY|os.O_RDWR) != 0
	if flag&os.O_TRUNC != 0 && writable {
		n.data = nil
	}
	return &memFile{fs: m, node: n, name: clean, gen: m.gen,
		readable: flag&os.O_WRONLY == 0, writable: writable}, nil
}

// Rename implements FS.
func (m *MemFS) Rename(oldpath, newpath string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	od, obase, err := m.lookupDir("rename", oldpath)
	if err != nil {
		return err
	}
	nd, nbase, err := m.lookupDir("rename", newpath)
	if err != nil {
		return err
	}
	n, ok := od.entries[obase]
	if !ok {
		return &fs.PathError{Op: "rename", Path: oldpath, Err: fs.ErrNotExist}
	}
	delete(od.entries, obase)
	nd.entries[nbase] = n
	return nil
}

// Remove implements FS for files.
func (m *MemFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, base, err := m.lookupDir("remove", name)
	if err != nil {
		return err
	}
	if _, ok := d.entries[base]; !ok {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	delete(d.entries, base)
	return nil
}

// ReadDir implements FS. It lists files and subdirectories.
func (m *MemFS) ReadDir(name string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	name = CleanPath(name)
	d, ok := m.dirs[name]
	if !ok {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	var names []string
	for n := range d.entries {
		names = append(names, n)
	}
	for p := range m.dirs {
		if p != name && filepath.Dir(p) == name {
			names = append(names, filepath.Base(p))
		}
	}
	sort.Strings(names)
	return names, nil
}

// MkdirAll implements FS. New directories are durable at once.
func (m *MemFS) MkdirAll(path string, _ fs.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for p := filepath.Clean(path); ; p = filepath.Dir(p) {
		if _, ok := m.dirs[p]; ok {
			return nil
		}
		if d, ok := m.dirs[filepath.Dir(p)]; ok {
			if _, isFile := d.entries[filepath.Base(p)]; isFile {
				return &fs.PathError{Op: "mkdir", Path: p, Err: fs.ErrExist}
			}
		}
		m.dirs[p] = newMemDir()
	}
}

// SyncDir implements FS: the directory's current entries become durable.
func (m *MemFS) SyncDir(path string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.dirs[CleanPath(path)]
	if !ok {
		return &fs.PathError{Op: "syncdir", Path: path, Err: fs.ErrNotExist}
	}
	d.durable = make(map[string]*memNode, len(d.entries))
	for k, v := range d.entries {
		d.durable[k] = v
	}
	return nil
}

// Crash simulates a power loss: every directory goes back to its durable
// entries, every file to its synced contents, and files opened before the
// crash fail with ErrCrashed from then on.
func (m *MemFS) Crash() { m.CrashWith(nil) }

// CrashWith is Crash, except that tear chooses, for each surviving file whose
// unsynced changes only appended to its synced contents, how many of the
// unsynced bytes survive (a torn write): it gets the file's path and the
// number of unsynced bytes and returns a count, clamped to [0, unsynced].
// Files are visited in path order, so a deterministic tear gives a
// deterministic result. A nil tear keeps none.
func (m *MemFS) CrashWith(tear func(path string, unsynced int) int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gen++
	dirNames := make([]string, 0, len(m.dirs))
	for p := range m.dirs {
		dirNames = append(dirNames, p)
	}
	sort.Strings(dirNames)
	for _, dp := range dirNames {
		d := m.dirs[dp]
		names := make([]string, 0, len(d.durable))
		for n := range d.durable {
			names = append(names, n)
		}
		sort.Strings(names)
		d.entries = make(map[string]*memNode, len(d.durable))
		for _, name := range names {
			n := d.durable[name]
			d.entries[name] = n
			keep := 0
			if extra := len(n.data) - len(n.synced); extra > 0 && tear != nil && bytes.HasPrefix(n.data, n.synced) {
				keep = max(0, min(extra, tear(filepath.Join(dp, name), extra)))
			}
			// No copies: synced bytes never change in place (see Sync),
			// and the caps make an append build a new array.
			survived := n.synced[:len(n.synced):len(n.synced)]
			if keep > 0 {
				survived = append(survived, n.data[len(n.synced):len(n.synced)+keep]...)
			}
			n.data = survived
			n.synced = survived[:len(survived):len(survived)]
		}
	}
}

type memFile struct {
	fs       *MemFS
	node     *memNode
	name     string
	gen      int
	closed   bool
	readable bool
	writable bool
}

func (f *memFile) check(op string) error {
	if f.gen != f.fs.gen {
		return &fs.PathError{Op: op, Path: f.name, Err: ErrCrashed}
	}
	if f.closed {
		return &fs.PathError{Op: op, Path: f.name, Err: fs.ErrClosed}
	}
	return nil
}

func (f *memFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("write"); err != nil {
		return 0, err
	}
	if !f.writable {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: fs.ErrPermission}
	}
	d := f.node.data
	if n := len(d) + len(p); n > cap(d) && cap(d) > 0 {
		// A file written more than once (a log segment, flushed at
		// every sync) grows in steps of at least 4 KiB, not from a few
		// bytes by doubling: fewer copies of it. A new array, as append
		// would make: synced bytes never change in place.
		g := make([]byte, len(d), max(n, 2*cap(d), 4096))
		copy(g, d)
		d = g
	}
	f.node.data = append(d, p...)
	return len(p), nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("read"); err != nil {
		return 0, err
	}
	if !f.readable {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: fs.ErrPermission}
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: fs.ErrInvalid}
	}
	if off >= int64(len(f.node.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.node.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("sync"); err != nil {
		return err
	}
	// No copy: data never changes in place (Write appends past its end,
	// Truncate and a crash build a new slice, O_TRUNC drops it), so the
	// synced bytes can share its backing array, capped so that an append
	// cannot reach them. Copying every file on every fsync was a tenth of the
	// simulator's allocation.
	f.node.synced = f.node.data[:len(f.node.data):len(f.node.data)]
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("truncate"); err != nil {
		return err
	}
	if !f.writable || size < 0 {
		return &fs.PathError{Op: "truncate", Path: f.name, Err: fs.ErrInvalid}
	}
	if size <= int64(len(f.node.data)) {
		f.node.data = bytes.Clone(f.node.data[:size])
	} else {
		f.node.data = append(f.node.data, make([]byte, size-int64(len(f.node.data)))...)
	}
	return nil
}

func (f *memFile) Stat() (fs.FileInfo, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("stat"); err != nil {
		return nil, err
	}
	return memInfo{name: filepath.Base(f.name), size: int64(len(f.node.data))}, nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("close"); err != nil {
		return err
	}
	f.closed = true
	return nil
}

type memInfo struct {
	name string
	size int64
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) Mode() fs.FileMode  { return 0o644 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }
