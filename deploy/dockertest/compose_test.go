package dockertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// cmdTimeout bounds every docker and docker-compose command: a wedged
// daemon fails the test instead of hanging it.
const cmdTimeout = 90 * time.Second

// buildTimeout bounds make image: compiling the binary on two busy cores.
const buildTimeout = 10 * time.Minute

// run runs a command and returns its trimmed combined output; the error
// carries the output.
func run(env []string, name string, args ...string) (string, error) {
	return runFor(cmdTimeout, env, name, args...)
}

func runFor(timeout time.Duration, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err != nil {
		return s, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, s)
	}
	return s, nil
}

func docker(args ...string) (string, error) { return run(nil, "docker", args...) }

// moduleRoot walks up from the working directory to the go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// freePort returns a loopback port nobody listens on right now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// member is one server of the compose ensemble.
type member struct {
	service    string // compose service and host name: zk-0
	id         int    // server id: ordinal + 1
	clientPort int    // on 127.0.0.1
	adminPort  int    // on 127.0.0.1
	container  string // container id
}

func (m *member) clientAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(m.clientPort))
}

// ensemble is one compose project of deploy/compose.
type ensemble struct {
	project string
	file    string
	image   string
	env     []string
	members []*member
	// extra are containers the test started itself on the project's
	// network (the IP thief); removed at the end.
	mu    sync.Mutex
	extra []string
}

// newEnsemble prepares a project with a unique name and free host ports.
func newEnsemble(root, image string, n int) (*ensemble, error) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	e := &ensemble{
		project: "zkdt" + hex.EncodeToString(b),
		file:    filepath.Join(root, "deploy", "compose", "docker-compose.yml"),
		image:   image,
		env:     []string{"ZABKEEPER_IMAGE=" + image},
	}
	for i := range n {
		cp, err := freePort()
		if err != nil {
			return nil, err
		}
		ap, err := freePort()
		if err != nil {
			return nil, err
		}
		m := &member{service: fmt.Sprintf("zk-%d", i), id: i + 1, clientPort: cp, adminPort: ap}
		e.members = append(e.members, m)
		e.env = append(e.env, fmt.Sprintf("ZK%d_CLIENT_PORT=%d", i, cp), fmt.Sprintf("ZK%d_ADMIN_PORT=%d", i, ap))
	}
	return e, nil
}

func (e *ensemble) compose(args ...string) (string, error) {
	return run(e.env, "docker-compose", append([]string{"-p", e.project, "-f", e.file}, args...)...)
}

// network is the compose network the servers share.
func (e *ensemble) network() string { return e.project + "_zk" }

// up validates the compose file, starts every service and learns the
// container ids.
func (e *ensemble) up() error {
	if _, err := e.compose("config", "-q"); err != nil {
		return err
	}
	return e.upServices(e.members...)
}

// upServices starts the given members (compose up -d) and learns their
// container ids.
func (e *ensemble) upServices(ms ...*member) error {
	args := []string{"up", "-d", "--no-build"}
	for _, m := range ms {
		args = append(args, m.service)
	}
	if _, err := e.compose(args...); err != nil {
		return err
	}
	for _, m := range ms {
		id, err := e.compose("ps", "-q", m.service)
		if err != nil {
			return err
		}
		if id == "" {
			return fmt.Errorf("no container for %s", m.service)
		}
		m.container = id
	}
	return nil
}

// stopAtEnd takes the project down when t ends, first saving every
// server's log as logName among the test's artifacts when t failed or
// -keep-logs asks, and logging their tails when it failed.
func (e *ensemble) stopAtEnd(t *testing.T, logName string) {
	t.Cleanup(func() {
		if t.Failed() || *keepLogs {
			if dir := artifactDir(t); dir != "" {
				path := filepath.Join(dir, logName)
				if err := os.WriteFile(path, []byte(e.logs("all")), 0o644); err == nil {
					t.Logf("server logs: %s", path)
				}
			}
		}
		if t.Failed() {
			t.Logf("server logs (tail):\n%s", e.logs("40"))
		}
		if err := e.down(); err != nil {
			t.Errorf("docker-compose down: %v", err)
		}
	})
}

// logs returns every server's log, the last tail lines each ("all" for all).
func (e *ensemble) logs(tail string) string {
	out, err := e.compose("logs", "--no-color", "--timestamps", "--tail", tail)
	if err != nil {
		return err.Error()
	}
	return out
}

// down removes the project with its volumes and anything the test added.
func (e *ensemble) down() error {
	e.mu.Lock()
	extra := e.extra
	e.extra = nil
	e.mu.Unlock()
	var errs []error
	for _, c := range extra {
		if _, err := docker("rm", "-f", "-v", c); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := e.compose("down", "-v", "--remove-orphans", "-t", "5"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (e *ensemble) addresses() []string {
	var out []string
	for _, m := range e.members {
		out = append(out, m.clientAddr())
	}
	return out
}

// ip returns a container's address on the project network ("" when it has
// none: stopped or disconnected).
func (e *ensemble) ip(m *member) (string, error) {
	return docker("inspect", "-f", `{{with index .NetworkSettings.Networks "`+e.network()+`"}}{{.IPAddress}}{{end}}`, m.container)
}

// pid returns the server process's pid on the host (0 if not running).
func pid(m *member) int {
	out, err := docker("inspect", "-f", "{{.State.Pid}}", m.container)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(out)
	return n
}

// vmHWM returns the peak resident set of the server process from /proc
// (the daemon runs on this host), 0 if unreadable.
func vmHWM(m *member) (rss, hwm int64) {
	p := pid(m)
	if p == 0 {
		return 0, 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[2] == "kB" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			switch f[0] {
			case "VmRSS:":
				rss = n * 1024
			case "VmHWM:":
				hwm = n * 1024
			}
		}
	}
	return rss, hwm
}

// stats returns docker stats' memory column for every server.
func (e *ensemble) stats() string {
	var ids []string
	for _, m := range e.members {
		ids = append(ids, m.container)
	}
	out, err := docker(append([]string{"stats", "--no-stream", "--format", "{{.Name}}: mem {{.MemUsage}}, cpu {{.CPUPerc}}"}, ids...)...)
	if err != nil {
		return err.Error()
	}
	return out
}

// httpClient talks to the admin servers on loopback only.
var httpClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

// readyz asks a server's /readyz through its published admin port.
func readyz(m *member) (bool, string) {
	resp, err := httpClient.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", m.adminPort))
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return resp.StatusCode == http.StatusOK, fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
}

// readyzInside asks /readyz from inside the container with the image's own
// probe: it works while the container is cut off from every network.
func readyzInside(m *member) (bool, string) {
	out, err := docker("exec", m.container, "/zabkeeper", "probe", "http://127.0.0.1:7181/readyz")
	return err == nil, out
}

// fourLetter sends a four-letter word to addr and returns the reply.
func fourLetter(addr, word string) string {
	nc, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return ""
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(nc, word); err != nil {
		return ""
	}
	out, _ := io.ReadAll(nc)
	return string(out)
}

// mode returns "leader", "follower" or "" (down, cut off or not serving)
// from a server's srvr.
func mode(m *member) string {
	for _, line := range strings.Split(fourLetter(m.clientAddr(), "srvr"), "\n") {
		if v, ok := strings.CutPrefix(line, "Mode: "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// waitFor polls cond every 100 ms until it holds or d passes; the error
// names what was awaited and the last state seen.
func waitFor(d time.Duration, what string, cond func() (bool, string)) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(d)
	last := ""
	for {
		ok, state := cond()
		if ok {
			return time.Since(start), nil
		}
		last = state
		if time.Now().After(deadline) {
			return time.Since(start), fmt.Errorf("%s: not within %s (last: %s)", what, d, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
