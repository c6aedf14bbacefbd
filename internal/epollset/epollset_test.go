//go:build linux

package epollset

import (
	"syscall"
	"testing"
	"time"

	"github.com/zabkeeper/zabkeeper/internal/tcppair"
)

// A socket in the set wakes a goroutine parked on the set's file, and Wait
// then reports it.
func TestWaitReportsAReadySocket(t *testing.T) {
	fd, file, raw, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	a, b := tcppair.New(t)
	sfd := -1
	rc, _ := b.(interface {
		SyscallConn() (syscall.RawConn, error)
	}).SyscallConn()
	_ = rc.Control(func(f uintptr) { sfd = int(f) })
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: 7}
	if err := syscall.EpollCtl(fd, syscall.EPOLL_CTL_ADD, sfd, &ev); err != nil {
		t.Fatal(err)
	}
	events := make([]syscall.EpollEvent, 4)
	if n, err := Wait(uintptr(fd), events); n != 0 || err != nil {
		t.Fatalf("Wait with nothing ready: %d, %v", n, err)
	}
	go func() { _, _ = a.Write([]byte("x")) }()
	_ = file.SetReadDeadline(time.Now().Add(10 * time.Second))
	var n int
	if err := raw.Read(func(f uintptr) bool {
		n, err = Wait(f, events)
		return n > 0 || err != nil
	}); err != nil {
		t.Fatalf("waiting for the socket: %v", err)
	}
	if err != nil || n != 1 || events[0].Fd != 7 {
		t.Fatalf("Wait: %d events, first %+v, err %v; want the socket's", n, events[0], err)
	}
}
