//go:build linux

package batchio

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	opFsync        = 3 // IORING_OP_FSYNC
	fsyncDatasync  = 1 // IORING_FSYNC_DATASYNC
	syncerRingSize = 4
)

// Syncer makes a file's data durable (fdatasync) through io_uring and waits
// for it in Go's netpoller. A plain fdatasync keeps its goroutine's thread,
// and its P, in a system call for the whole flush (100-500 µs here): the
// runtime's sysmon then retakes the P and hands it to another thread, and,
// having retaken one, goes on waking every 20 µs instead of backing off —
// 14-17% of each server's CPU under writes (BENCHMARKS.md, batchio). Here
// the kernel's io_uring worker does the flush while the goroutine is parked
// like one waiting on a socket.
//
// A Syncer is safe for concurrent use; its fsyncs run one at a time.
type Syncer struct {
	mu    sync.Mutex
	r     *ring
	file  *os.File        // the ring's descriptor, polled by Go's netpoller
	rc    syscall.RawConn // file's
	ready func(uintptr) bool
}

// NewSyncer sets up a Syncer, or says why io_uring cannot be used for it;
// ZABKEEPER_IO_URING=0 in the environment refuses it too.
func NewSyncer() (*Syncer, error) {
	if err := turnedOff(); err != nil {
		return nil, err
	}
	r, err := newRing(syncerRingSize)
	if err != nil {
		return nil, err
	}
	if err := syscall.SetNonblock(r.fd, true); err != nil {
		_ = r.close()
		return nil, fmt.Errorf("batchio: io_uring non-blocking: %w", err)
	}
	// The file owns the descriptor from here: Close closes it through the
	// file, after unmapping the rings.
	file := os.NewFile(uintptr(r.fd), "io_uring")
	rc, err := file.SyscallConn()
	if err != nil {
		r.unmap()
		_ = file.Close()
		return nil, fmt.Errorf("batchio: io_uring file: %w", err)
	}
	s := &Syncer{r: r, file: file, rc: rc}
	s.ready = func(uintptr) bool { return atomic.LoadUint32(s.r.cqTail) != *s.r.cqHead }
	return s, nil
}

// Datasync is fdatasync(fd). The caller keeps fd open until it returns.
func (s *Syncer) Datasync(fd uintptr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.r
	if r == nil {
		return errors.New("batchio: Datasync on a closed Syncer")
	}
	sq := (*sqe)(unsafe.Add(r.sqes, uintptr(r.tail&r.sqMask)*unsafe.Sizeof(sqe{})))
	*sq = sqe{opcode: opFsync, fd: int32(fd), msgFlags: fsyncDatasync, userData: 1}
	r.tail++
	atomic.StoreUint32(r.sqTail, r.tail)
	// The kernel tries the fsync inline, finds it would block and hands it
	// to its worker: this returns at once.
	if r.enter(1) != 1 {
		// Not taken: take the entry back and fsync here.
		r.tail--
		atomic.StoreUint32(r.sqTail, r.tail)
		return fdatasync(fd)
	}
	if !s.ready(0) {
		if err := s.rc.Read(s.ready); err != nil {
			// Not pollable after all: wait in the kernel.
			for !s.ready(0) {
				_, _, errno := syscall.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), 0, 1, enterGetEvents, 0, 0)
				if errno != 0 && errno != syscall.EINTR {
					panic(fmt.Sprintf("batchio: io_uring_enter waiting for an fsync: %v", errno))
				}
			}
		}
	}
	head := *r.cqHead
	c := (*cqe)(unsafe.Add(r.cqes, uintptr(head&r.cqMask)*unsafe.Sizeof(cqe{})))
	res := c.res
	atomic.StoreUint32(r.cqHead, head+1)
	if res < 0 {
		return syscall.Errno(-res)
	}
	return nil
}

// Close releases the ring.
func (s *Syncer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.r == nil {
		return nil
	}
	s.r.unmap()
	s.r = nil
	return s.file.Close()
}

func fdatasync(fd uintptr) error {
	for {
		if err := syscall.Fdatasync(int(fd)); err != syscall.EINTR {
			return err
		}
	}
}
