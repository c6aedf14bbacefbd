package disk

import (
	"fmt"
	"os"
	"path/filepath"
)

// LogEnd says how the data of a log file ends.
type LogEnd struct {
	// Offset is the end of the valid data (just past the last valid
	// record), Size the size of the file.
	Offset, Size int64
	// Kind is "end of file", "zero fill" (ZooKeeper's preallocation),
	// "torn record" (a write a crash cut short: the data ends before it) or
	// "corrupt record" (damage a crash does not explain: OpenLog refuses
	// it in the last file unless asked to cut it).
	Kind string
	// Fault says what is wrong with a torn or corrupt record.
	Fault string
	// Records is the number of valid records, First and Last the zxids of
	// the first and last.
	Records     int
	First, Last int64
	// Repeats counts records whose zxid is not above an earlier one's in
	// the file (ZooKeeper's learner logs a DIFF's txns twice), not in
	// Records and not passed to fn.
	Repeats int
}

// ScanLogFile reads the log file at path on fsys (nil: OSFS) without
// changing it, calls fn (if not nil) for every valid record with its
// offset, and says how the file's data ends. Damage with valid records
// after it, a bad header or a first zxid below the name's are errors that
// wrap ErrCorrupt and name the file and offset; repeated zxids are counted
// (Repeats). It is what `zabkeeper log
// dump` and `zabkeeper datadir verify` read files with.
func ScanLogFile(fsys FS, path string, fn func(r Record, off int64) error) (LogEnd, error) {
	f, err := orOS(fsys).OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return LogEnd{}, fmt.Errorf("disk: open %s: %w", path, err)
	}
	defer f.Close()
	size, err := fileSize(f)
	if err != nil {
		return LogEnd{}, fmt.Errorf("disk: stat %s: %w", path, err)
	}
	end := LogEnd{Size: size}
	if size < logHeaderSize {
		if torn, err := isTornHeader(f, size); err == nil && torn {
			end.Kind, end.Fault = "torn record", "torn file header"
			return end, nil
		}
	}
	first := false
	sc, err := scanSegment(path, f, size, -1, 0, func(r Record, off int64) error {
		if !first {
			end.First, first = r.Zxid, true
		}
		if fn != nil {
			return fn(r, off)
		}
		return nil
	})
	if err != nil {
		return end, err
	}
	end.Offset, end.Records, end.Last, end.Repeats = sc.end, sc.count, sc.last, sc.repeats
	switch sc.tail {
	case tailClean:
		end.Kind = "end of file"
	case tailZero:
		end.Kind = "zero fill"
	case tailTorn:
		end.Kind, end.Fault = "torn record", sc.fault.String()
	case tailCorrupt:
		end.Kind, end.Fault = "corrupt record", sc.fault.String()
	}
	return end, nil
}

// LogFiles returns the paths of the log files (log.<hex zxid>) under
// dir/version-2, oldest first, and the zxid each is named for.
func LogFiles(fsys FS, dir string) (paths []string, zxids []int64, err error) {
	d := filepath.Join(dir, versionDir)
	ns, err := listNamed(orOS(fsys), d, logPrefix)
	if err != nil {
		return nil, nil, fmt.Errorf("disk: list %s: %w", d, err)
	}
	for _, n := range ns {
		paths = append(paths, filepath.Join(d, n.name))
		zxids = append(zxids, n.zxid)
	}
	return paths, zxids, nil
}
