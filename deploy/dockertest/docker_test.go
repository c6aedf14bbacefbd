package dockertest

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zabkeeper/zabkeeper/linearizability"
)

var (
	imageFlag = flag.String("image", "zabkeeper:dev", "the image to build (make image IMAGE=...) and run")
	noBuild   = flag.Bool("no-build", false, "run the image as it is instead of building it first")
	seedFlag  = flag.Uint64("seed", 0, "the workload's seed; 0 = from the clock (printed)")
	keepLogs  = flag.Bool("keep-logs", false, "save the servers' logs also when the test passes")
)

// Deadlines of the waits. Every wait polls; none of these is a sleep.
const (
	startDeadline   = 90 * time.Second  // the ensemble forms after up
	recoverDeadline = 90 * time.Second  // a quorum serves again after a fault
	cutDeadline     = 60 * time.Second  // a cut-off server says not ready
	stopGrace       = "30"              // docker stop -t: the compose stop_grace_period
	checkTimeout    = 120 * time.Second // Porcupine's budget
	nWorkers        = 4
)

// requireDocker fails (never skips) when the daemon or docker-compose is
// missing: with ZABKEEPER_DOCKER_TEST=1 the caller asked for these tests.
func requireDocker(t *testing.T) {
	t.Helper()
	if out, err := docker("info", "--format", "{{.ServerVersion}}"); err != nil {
		t.Fatalf("ZABKEEPER_DOCKER_TEST=1 but the Docker daemon does not answer (.ci/run starts one): %v", err)
	} else {
		t.Logf("Docker Engine %s", out)
	}
	if out, err := run(nil, "docker-compose", "version", "--short"); err != nil {
		t.Fatalf("ZABKEEPER_DOCKER_TEST=1 but docker-compose is missing (apt-get install docker-compose): %v", err)
	} else {
		t.Logf("docker-compose %s", out)
	}
}

// artifacts is the directory a failed run leaves its evidence in; it
// outlives the test (t.TempDir would not).
var artifacts string

func artifactDir(t *testing.T) string {
	if artifacts == "" {
		dir, err := os.MkdirTemp("", "zabkeeper-dockertest-")
		if err != nil {
			t.Logf("artifact directory: %v", err)
			return ""
		}
		artifacts = dir
	}
	return artifacts
}

// figures are the measurements the test prints at the end.
type figures struct {
	lines []string
}

func (f *figures) add(format string, args ...any) {
	f.lines = append(f.lines, fmt.Sprintf(format, args...))
}

func ms(d time.Duration) string { return d.Round(10 * time.Millisecond).String() }

// dockerTestRoot skips t unless ZABKEEPER_DOCKER_TEST=1, fails it
// without a working Docker, and returns the module's root.
func dockerTestRoot(t *testing.T) string {
	t.Helper()
	if os.Getenv("ZABKEEPER_DOCKER_TEST") != "1" {
		t.Skip("container tests run with ZABKEEPER_DOCKER_TEST=1 (make docker-test)")
	}
	requireDocker(t)
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestDockerEnsemble is the container test: see the package comment.
func TestDockerEnsemble(t *testing.T) {
	root := dockerTestRoot(t)
	var fig figures
	defer func() {
		t.Logf("figures:\n  %s", strings.Join(fig.lines, "\n  "))
	}()

	if !*noBuild {
		start := time.Now()
		if _, err := runFor(buildTimeout, nil, "make", "-C", root, "image", "IMAGE="+*imageFlag); err != nil {
			t.Fatal(err)
		}
		fig.add("image build (make image): %s", ms(time.Since(start)))
	}
	size, err := docker("image", "inspect", "-f", "{{.Size}}", *imageFlag)
	if err != nil {
		t.Fatal(err)
	}
	fig.add("image %s: %s bytes", *imageFlag, size)

	e, err := newEnsemble(root, *imageFlag, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("compose project %s, client ports %v", e.project, e.addresses())
	e.stopAtEnd(t, "servers.log")
	if err := e.up(); err != nil {
		t.Fatal(err)
	}
	took, err := e.waitServing(startDeadline, e.members)
	if err != nil {
		t.Fatal(err)
	}
	fig.add("ensemble serving %s after docker-compose up returned", ms(took))
	fig.add("idle: %s", e.memory())

	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("workload seed %d (-seed %d replays the same operation choices)", seed, seed)
	l, err := startLoad(e.addresses(), nWorkers, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.close) // before down: cleanups run last-in first-out
	if _, err := waitFor(recoverDeadline, "first writes acknowledged", func() (bool, string) {
		n := len(l.rec.Acks())
		return n >= 100, fmt.Sprintf("%d acks", n)
	}); err != nil {
		t.Fatal(err)
	}

	phases := []struct {
		name string
		run  func(*testing.T, *ensemble, *workload, *figures)
	}{
		{"kill the leader", killLeader},
		{"restart a follower with a new IP", restartFollowerNewIP},
		{"cut a follower off the network", cutFollower},
		{"cut the leader off the network", cutLeader},
		{"rolling restart", rollingRestart},
	}
	for _, p := range phases {
		t.Logf("--- %s (%s)", p.name, time.Now().UTC().Format("15:04:05.000"))
		p.run(t, e, l, &fig)
		if t.Failed() {
			return
		}
	}
	fig.add("after the faults, under load: %s", e.memory())

	l.close()
	acked, lost, err := l.finalCheck(e.addresses())
	if err != nil {
		t.Fatal(err)
	}
	h := l.rec.History()
	unknowns, expired := l.rec.Counts()
	fig.add("operations: %d (%d of unknown outcome), acknowledged markers %d, lost %d, sessions expired %d",
		len(h.Ops), unknowns, acked, len(lost), expired)
	if len(lost) > 0 {
		t.Errorf("acknowledged writes lost: %d of %d: %v", len(lost), acked, lost)
	}
	if acked < 50 {
		t.Errorf("only %d acknowledged markers: the workload did too little to check anything", acked)
	}
	res, err := linearizability.CheckLinearizable(h, checkTimeout)
	if err != nil {
		t.Fatalf("linearizability check: %v", err)
	}
	fig.add("Porcupine: %s", res)
	if !res.Ok {
		if dir := artifactDir(t); dir != "" {
			path := filepath.Join(dir, "history.html")
			if err := linearizability.WriteVisualization(h, res, path); err == nil {
				t.Logf("visualization: %s", path)
			}
		}
		t.Errorf("history %s", res)
	}
}

// waitServing waits until every one of ms answers /readyz 200 and exactly
// one of them is the leader.
func (e *ensemble) waitServing(d time.Duration, ms []*member) (time.Duration, error) {
	return waitFor(d, "ensemble serving", func() (bool, string) {
		var state []string
		ok, leaders := true, 0
		for _, m := range ms {
			r, body := readyz(m)
			md := mode(m)
			if md == "leader" {
				leaders++
			}
			ok = ok && r
			state = append(state, fmt.Sprintf("%s ready=%v mode=%q (%s)", m.service, r, md, body))
		}
		return ok && leaders == 1, strings.Join(state, "; ")
	})
}

// leader returns the member that says it leads, among the reachable ones.
func (e *ensemble) leader(t *testing.T) *member {
	t.Helper()
	var found *member
	if _, err := waitFor(recoverDeadline, "a leader", func() (bool, string) {
		found = nil
		var modes []string
		for _, m := range e.members {
			md := mode(m)
			modes = append(modes, m.service+"="+md)
			if md == "leader" {
				if found != nil {
					return false, "two leaders: " + strings.Join(modes, " ")
				}
				found = m
			}
		}
		return found != nil, strings.Join(modes, " ")
	}); err != nil {
		t.Fatal(err)
	}
	return found
}

func (e *ensemble) follower(t *testing.T) *member {
	t.Helper()
	l := e.leader(t)
	for _, m := range e.members {
		if m != l {
			return m
		}
	}
	t.Fatal("no follower")
	return nil
}

func others(e *ensemble, x *member) []*member {
	var out []*member
	for _, m := range e.members {
		if m != x {
			out = append(out, m)
		}
	}
	return out
}

// memory reports each server's memory: docker stats' figure and the
// process's resident set (current and peak) from /proc.
func (e *ensemble) memory() string {
	var parts []string
	for _, m := range e.members {
		rss, hwm := vmHWM(m)
		parts = append(parts, fmt.Sprintf("%s RSS %.1f MiB (peak %.1f MiB)", m.service, float64(rss)/(1<<20), float64(hwm)/(1<<20)))
	}
	return strings.Join(parts, ", ") + "; docker stats: " + strings.ReplaceAll(e.stats(), "\n", "; ")
}

// resumed waits until a write is acknowledged after t0 and returns the
// write pause around t0.
func resumed(t *testing.T, l *workload, t0 time.Time) time.Duration {
	t.Helper()
	if _, err := waitFor(recoverDeadline, "writes acknowledged again", func() (bool, string) {
		acks := l.rec.Acks()
		return len(acks) > 0 && acks[len(acks)-1] > t0.UnixNano(), "no write acknowledged since the fault"
	}); err != nil {
		t.Fatal(err)
	}
	return l.rec.WritePause(t0, time.Now())
}

// killLeader: docker kill (SIGKILL) of the leader; the others elect a new
// one; the old leader is started again and rejoins.
func killLeader(t *testing.T, e *ensemble, l *workload, fig *figures) {
	old := e.leader(t)
	t0 := time.Now()
	if _, err := docker("kill", old.container); err != nil {
		t.Fatal(err)
	}
	elected, err := e.waitServing(recoverDeadline, others(e, old))
	if err != nil {
		t.Fatal(err)
	}
	pause := resumed(t, l, t0)
	if _, err := docker("start", old.container); err != nil {
		t.Fatal(err)
	}
	rejoin, err := e.waitServing(recoverDeadline, e.members)
	if err != nil {
		t.Fatal(err)
	}
	fig.add("kill leader %s: new leader serving after %s, write pause %s, killed server back in %s after docker start",
		old.service, ms(elected), ms(pause), ms(rejoin))
}

// restartFollowerNewIP stops a follower, lets another container take its
// address, and starts it again: it comes back on a new IP, which its peers
// must find by name.
func restartFollowerNewIP(t *testing.T, e *ensemble, l *workload, fig *figures) {
	f := e.follower(t)
	oldIP, err := e.ip(f)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if _, err := docker("stop", "-t", stopGrace, f.container); err != nil {
		t.Fatal(err)
	}
	// The thief runs the same image as a standalone server (the only
	// long-running program the image has) and holds the freed address.
	thief := e.project + "-ipthief"
	e.mu.Lock()
	e.extra = append(e.extra, thief)
	e.mu.Unlock()
	if _, err := docker("run", "-d", "--name", thief, "--network", e.network(), e.image); err != nil {
		t.Fatal(err)
	}
	if _, err := docker("start", f.container); err != nil {
		t.Fatal(err)
	}
	newIP, err := e.ip(f)
	if err != nil {
		t.Fatal(err)
	}
	thiefIP, _ := docker("inspect", "-f", `{{with index .NetworkSettings.Networks "`+e.network()+`"}}{{.IPAddress}}{{end}}`, thief)
	if newIP == "" || newIP == oldIP {
		t.Fatalf("%s came back on %q, was %s (the thief has %s): the IP did not change, so re-resolution is not tested", f.service, newIP, oldIP, thiefIP)
	}
	rejoin, err := e.waitServing(recoverDeadline, e.members)
	if err != nil {
		t.Fatal(err)
	}
	pause := l.rec.WritePause(t0, time.Now())
	if _, err := docker("rm", "-f", "-v", thief); err != nil {
		t.Fatal(err)
	}
	fig.add("restart follower %s with a new IP (%s -> %s): serving again %s after docker start, longest write pause %s",
		f.service, oldIP, newIP, ms(rejoin), ms(pause))
}

// cut disconnects m from the compose network, waits until m says it is not
// ready (asked from inside: the host cannot reach it) while the others keep
// serving, then reconnects it and waits until all serve. It returns the
// times: to not-ready, to a quorum serving without m, to all serving after
// the reconnect, and the longest write pause.
func cut(t *testing.T, e *ensemble, l *workload, m *member) (notReady, serving, back, pause time.Duration) {
	t.Helper()
	t0 := time.Now()
	if _, err := docker("network", "disconnect", e.network(), m.container); err != nil {
		t.Fatal(err)
	}
	var err error
	serving, err = e.waitServing(recoverDeadline, others(e, m))
	if err != nil {
		t.Fatal(err)
	}
	notReady, err = waitFor(cutDeadline, m.service+" /readyz false while cut off", func() (bool, string) {
		ok, body := readyzInside(m)
		return !ok, body
	})
	if err != nil {
		t.Fatal(err)
	}
	notReady = time.Since(t0)
	pause = resumed(t, l, t0)
	if _, err := docker("network", "connect", e.network(), m.container); err != nil {
		t.Fatal(err)
	}
	back, err = e.waitServing(recoverDeadline, e.members)
	if err != nil {
		t.Fatal(err)
	}
	return notReady, serving, back, max(pause, l.rec.WritePause(t0, time.Now()))
}

func cutFollower(t *testing.T, e *ensemble, l *workload, fig *figures) {
	f := e.follower(t)
	notReady, _, back, pause := cut(t, e, l, f)
	fig.add("cut follower %s: /readyz false after %s, longest write pause %s, serving again %s after reconnect",
		f.service, ms(notReady), ms(pause), ms(back))
}

func cutLeader(t *testing.T, e *ensemble, l *workload, fig *figures) {
	old := e.leader(t)
	notReady, serving, back, pause := cut(t, e, l, old)
	fig.add("cut leader %s: new leader serving after %s, old leader /readyz false after %s, write pause %s, serving again %s after reconnect",
		old.service, ms(serving), ms(notReady), ms(pause), ms(back))
}

// rollingRestart stops (SIGTERM) and starts each server in turn, highest
// ordinal first as a StatefulSet rolls, waiting for /readyz before the
// next. No session may expire.
func rollingRestart(t *testing.T, e *ensemble, l *workload, fig *figures) {
	start := time.Now()
	for i := len(e.members) - 1; i >= 0; i-- {
		m := e.members[i]
		role := mode(m)
		t0 := time.Now()
		if _, err := docker("stop", "-t", stopGrace, m.container); err != nil {
			t.Fatal(err)
		}
		stopped := time.Since(t0)
		if _, err := docker("start", m.container); err != nil {
			t.Fatal(err)
		}
		ready, err := e.waitServing(recoverDeadline, e.members)
		if err != nil {
			t.Fatal(err)
		}
		pause := l.rec.WritePause(t0, time.Now())
		fig.add("rolling restart %s (%s): docker stop took %s, serving again %s after docker start, longest write pause %s",
			m.service, role, ms(stopped), ms(ready), ms(pause))
	}
	expired := l.rec.ExpiredBetween(start, time.Now())
	fig.add("rolling restart: %s in all, %d sessions expired", ms(time.Since(start)), expired)
	if expired > 0 {
		t.Errorf("%d sessions expired during the rolling restart", expired)
	}
}
