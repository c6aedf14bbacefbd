//go:build linux

package batchio

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The io_uring ABI this package uses (linux/io_uring.h).
const (
	setupSubmitAll = 1 << 7  // IORING_SETUP_SUBMIT_ALL (5.18): consume every SQE even after one fails
	setupNoSQArray = 1 << 16 // IORING_SETUP_NO_SQARRAY (6.6): SQ slots are SQE indexes

	featSingleMmap = 1 << 0 // IORING_FEAT_SINGLE_MMAP: both rings in one mapping

	offSQRing = 0          // IORING_OFF_SQ_RING
	offSQEs   = 0x10000000 // IORING_OFF_SQES

	opSend = 26 // IORING_OP_SEND
	opRecv = 27 // IORING_OP_RECV

	enterGetEvents = 1 << 0 // IORING_ENTER_GETEVENTS
)

// params is struct io_uring_params.
type params struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqOffsets
	cqOff                                                                  cqOffsets
}

type sqOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type cqOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

// sqe is struct io_uring_sqe (64 bytes).
type sqe struct {
	opcode, flags         uint8
	ioprio                uint16
	fd                    int32
	off, addr             uint64
	len, msgFlags         uint32
	userData              uint64
	bufIndex, personality uint16
	spliceFDIn            int32
	addr3, pad            uint64
}

// cqe is struct io_uring_cqe (16 bytes, no CQE32).
type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

// ring is one io_uring, used by one goroutine at a time and never with
// SQPOLL: the kernel reads the submission queue only inside io_uring_enter,
// so entries it did not consume can be taken back.
type ring struct {
	fd      int
	mem     []byte // both rings
	sqeMem  []byte
	sqHead  *uint32 // the kernel's: the entries it has consumed
	sqTail  *uint32
	sqMask  uint32
	sqes    unsafe.Pointer
	cqHead  *uint32
	cqTail  *uint32
	cqMask  uint32
	cqes    unsafe.Pointer
	tail    uint32 // the submission queue's tail as we last wrote it
	entries uint32
}

// setupFlags are the flag sets newRing tries, in order: a kernel before 6.6
// refuses NO_SQARRAY with EINVAL, and one before 5.18 SUBMIT_ALL (then there
// is no ring: without SUBMIT_ALL the kernel may stop at a failed entry).
var setupFlags = []uint32{setupSubmitAll | setupNoSQArray, setupSubmitAll}

// newRing sets up a ring of entries submission slots.
func newRing(entries uint32) (*ring, error) {
	var p params
	var fd uintptr
	var errno syscall.Errno
	for _, flags := range setupFlags {
		p = params{flags: flags}
		fd, _, errno = syscall.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
		if errno != syscall.EINVAL {
			break // set up, or refused for a reason other flags do not change
		}
	}
	if errno != 0 {
		return nil, fmt.Errorf("batchio: io_uring_setup: %w", errno)
	}
	r := &ring{fd: int(fd), entries: p.sqEntries}
	if err := r.mapRings(&p); err != nil {
		_ = r.close()
		return nil, err
	}
	return r, nil
}

func (r *ring) mapRings(p *params) error {
	if p.features&featSingleMmap == 0 {
		return fmt.Errorf("batchio: io_uring without IORING_FEAT_SINGLE_MMAP (kernel before 5.4)")
	}
	size := p.cqOff.cqes + p.cqEntries*uint32(unsafe.Sizeof(cqe{}))
	hasArray := p.flags&setupNoSQArray == 0
	if hasArray {
		size = max(size, p.sqOff.array+p.sqEntries*4)
	}
	mem, err := syscall.Mmap(r.fd, offSQRing, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("batchio: mmap io_uring rings: %w", err)
	}
	r.mem = mem
	sqeMem, err := syscall.Mmap(r.fd, offSQEs, int(p.sqEntries)*int(unsafe.Sizeof(sqe{})), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("batchio: mmap io_uring SQEs: %w", err)
	}
	r.sqeMem = sqeMem
	base := unsafe.Pointer(unsafe.SliceData(mem))
	r.sqHead = (*uint32)(unsafe.Add(base, p.sqOff.head))
	r.sqTail = (*uint32)(unsafe.Add(base, p.sqOff.tail))
	r.sqMask = *(*uint32)(unsafe.Add(base, p.sqOff.ringMask))
	r.cqHead = (*uint32)(unsafe.Add(base, p.cqOff.head))
	r.cqTail = (*uint32)(unsafe.Add(base, p.cqOff.tail))
	r.cqMask = *(*uint32)(unsafe.Add(base, p.cqOff.ringMask))
	r.cqes = unsafe.Add(base, p.cqOff.cqes)
	r.sqes = unsafe.Pointer(unsafe.SliceData(sqeMem))
	r.tail = atomic.LoadUint32(r.sqTail)
	if hasArray {
		// Slot i always names SQE i.
		array := unsafe.Slice((*uint32)(unsafe.Add(base, p.sqOff.array)), p.sqEntries)
		for i := range array {
			array[i] = uint32(i)
		}
	}
	return nil
}

func (r *ring) close() error {
	r.unmap()
	return syscall.Close(r.fd)
}

// unmap unmaps the rings, leaving the descriptor open.
func (r *ring) unmap() {
	if r.sqeMem != nil {
		_ = syscall.Munmap(r.sqeMem)
		r.sqeMem = nil
	}
	if r.mem != nil {
		_ = syscall.Munmap(r.mem)
		r.mem = nil
	}
}

// submit does ops (at most entries of them) in one io_uring_enter; fds[j]
// is ops[j]'s descriptor, held open by the caller, or -1 to skip it.
func (r *ring) submit(ops []Op, fds []int32, recv bool) {
	op, flags := uint8(opSend), uint32(syscall.MSG_DONTWAIT|syscall.MSG_NOSIGNAL)
	if recv {
		op, flags = opRecv, syscall.MSG_DONTWAIT
	}
	n := uint32(0)
	for j := range ops {
		if fds[j] < 0 {
			continue
		}
		buf := ops[j].Buf
		if len(buf) == 0 {
			if recv {
				ops[j].Err = syscall.EINVAL // no room: not the end of the stream
			}
			continue
		}
		s := (*sqe)(unsafe.Add(r.sqes, uintptr(r.tail&r.sqMask)*unsafe.Sizeof(sqe{})))
		*s = sqe{
			opcode:   op,
			fd:       fds[j],
			addr:     uint64(uintptr(unsafe.Pointer(unsafe.SliceData(buf)))),
			len:      uint32(min(len(buf), 1<<30)),
			msgFlags: flags,
			userData: uint64(j),
		}
		r.tail++
		n++
	}
	if n == 0 {
		return
	}
	atomic.StoreUint32(r.sqTail, r.tail)
	consumed := r.enter(n)
	if consumed < n {
		// The kernel left the last n-consumed entries in the queue (it
		// refused them all, or ran short of resources): take them back
		// and do those operations one system call each.
		r.tail -= n - consumed
		atomic.StoreUint32(r.sqTail, r.tail)
		skipped := make(map[uint64]bool, n-consumed)
		for t := r.tail; t != r.tail+(n-consumed); t++ {
			skipped[(*sqe)(unsafe.Add(r.sqes, uintptr(t&r.sqMask)*unsafe.Sizeof(sqe{}))).userData] = true
		}
		for j := range ops {
			if skipped[uint64(j)] {
				fd := uintptr(fds[j])
				if recv {
					ops[j].N, ops[j].Err = recvFD(fd, ops[j].Buf)
				} else {
					ops[j].N, ops[j].Err = sendFD(fd, ops[j].Buf)
				}
			}
		}
	}
	r.reap(ops, consumed, recv)
	runtime.KeepAlive(ops)
}

// enter submits the last n entries of the submission queue and returns how
// many of them the kernel consumed, read from the queue's head (what the
// kernel took, whatever io_uring_enter returned): an entry it took must be
// reaped, never taken back.
func (r *ring) enter(n uint32) uint32 {
	start := r.tail - n
	for {
		_, _, errno := syscall.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(r.tail-atomic.LoadUint32(r.sqHead)), 0, 0, 0, 0)
		consumed := atomic.LoadUint32(r.sqHead) - start
		if consumed == n || errno != syscall.EINTR {
			return consumed
		}
	}
}

// reap takes want completions off the completion queue. With MSG_DONTWAIT
// the kernel completes every operation inside io_uring_enter, so they are
// all there; should one not be, this waits for it, since its buffer must
// not be given back before.
func (r *ring) reap(ops []Op, want uint32, recv bool) {
	for got := uint32(0); got < want; {
		head, tail := *r.cqHead, atomic.LoadUint32(r.cqTail)
		if head == tail {
			_, _, errno := syscall.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), 0, uintptr(want-got), enterGetEvents, 0, 0)
			if errno != 0 && errno != syscall.EINTR {
				panic(fmt.Sprintf("batchio: io_uring_enter waiting for %d completions: %v", want-got, errno))
			}
			continue
		}
		for ; head != tail && got < want; head++ {
			c := (*cqe)(unsafe.Add(r.cqes, uintptr(head&r.cqMask)*unsafe.Sizeof(cqe{})))
			op := &ops[c.userData]
			switch {
			case c.res >= 0:
				op.N = int(c.res)
			case syscall.Errno(-c.res) == syscall.EAGAIN && !recv:
				// Would block: the socket took nothing.
			default:
				op.Err = syscall.Errno(-c.res)
			}
			got++
		}
		atomic.StoreUint32(r.cqHead, head)
	}
}
