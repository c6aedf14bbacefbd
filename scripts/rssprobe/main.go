// Command rssprobe measures a server's memory under large writes: it
// starts the zabkeeper binary given (standalone, on a fresh data directory),
// writes -n setData of -size bytes to one znode with go-zookeeper, and
// prints the server's resident set (VmRSS) and its peak (VmHWM) from
// /proc. It is a measurement, not a test (issue 8 item 3: 1,500 x 1 MB).
//
//	go build -o /tmp/zk ./cmd/zabkeeper && go run ./scripts/rssprobe -bin /tmp/zk
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"
)

func main() {
	bin := flag.String("bin", "", "zabkeeper binary")
	n := flag.Int("n", 1500, "setData calls")
	size := flag.Int("size", 1000000, "bytes per setData")
	extra := flag.String("cfg", "", "extra zoo.cfg lines, ';'-separated")
	flag.Parse()
	if err := run(*bin, *n, *size, *extra); err != nil {
		fmt.Fprintln(os.Stderr, "rssprobe:", err)
		os.Exit(1)
	}
}

func run(bin string, n, size int, extra string) error {
	dir, err := os.MkdirTemp("", "rssprobe")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	cfg := fmt.Sprintf("tickTime=2000\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n%s\n",
		filepath.Join(dir, "data"), port, strings.ReplaceAll(extra, ";", "\n"))
	cfgPath := filepath.Join(dir, "zoo.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	cmd := exec.Command(bin, "server", "--config", cfgPath, "--log-level", "warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	c, _, err := zk.Connect([]string{fmt.Sprintf("127.0.0.1:%d", port)}, 30*time.Second, zk.WithLogInfo(false))
	if err != nil {
		return err
	}
	defer c.Close()
	data := make([]byte, size)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err = c.Create("/big", nil, 0, zk.WorldACL(zk.PermAll))
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		data[0], data[1] = byte(i), byte(i>>8)
		if _, err := c.Set("/big", data, -1); err != nil {
			return fmt.Errorf("setData %d: %w", i, err)
		}
	}
	took := time.Since(start)
	rss, hwm, err := memory(cmd.Process.Pid)
	if err != nil {
		return err
	}
	fmt.Printf("setData=%d size=%d cfg=%q took=%s VmRSS=%d MB VmHWM=%d MB\n", n, size, extra, took.Round(time.Millisecond), rss>>10, hwm>>10)
	return nil
}

// memory reads VmRSS and VmHWM (in KiB) of pid.
func memory(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var v int64
		if _, e := fmt.Sscanf(sc.Text(), "VmRSS: %d kB", &v); e == nil {
			rss = v
		}
		if _, e := fmt.Sscanf(sc.Text(), "VmHWM: %d kB", &v); e == nil {
			hwm = v
		}
	}
	return rss, hwm, sc.Err()
}
