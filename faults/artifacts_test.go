package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/zabkeeper/zabkeeper/faults/load"
	"github.com/zabkeeper/zabkeeper/linearizability"
)

// artifacts is what a failing run leaves behind for a post-mortem, written
// to one directory: README.txt (seed, replay command), faults.txt (the
// faults with their wall-clock times, comparable with the history's),
// history.txt (every op, by call time), porcupine.html (when the history is
// not linearizable, or the check timed out), watches.txt and
// server-N.log (the tail of each process's output, with the harness's
// start and wipe markers), and with -faults.reconfig reconfigs.txt (the
// operator's reconfigs and reads of /zookeeper/config, by call time).
type artifacts struct {
	n       int
	seed    uint64
	bug     string // planted in every server, "" for none
	replay  string
	c       *cluster
	rec     *load.Recorder           // the history so far
	checked *linearizability.History // the history the checks ran on, once taken
	faults  []faultRecord
	lin     *linearizability.Result // set once checked
	watches watchReport
	// op is the reconfig mode's operator (nil without it): its reconfigs
	// and reads of /zookeeper/config go to reconfigs.txt.
	op *operator
}

func (a *artifacts) dir() (string, error) {
	base := *faultsDir
	if base == "" {
		base = os.Getenv("ZABKEEPER_FAULTS_DIR")
	}
	pattern := fmt.Sprintf("zabkeeper-faults-n%d-seed%d-", a.n, a.seed)
	if a.bug != "" {
		pattern = fmt.Sprintf("zabkeeper-faults-%s-n%d-seed%d-", a.bug, a.n, a.seed)
	}
	if base == "" {
		return os.MkdirTemp("", pattern)
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", err
	}
	return os.MkdirTemp(base, pattern)
}

func (a *artifacts) save(t *testing.T) {
	dir, err := a.dir()
	if err != nil {
		t.Logf("artifacts: %v", err)
		return
	}
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Logf("artifacts: %v", err)
		}
	}
	readme := fmt.Sprintf("servers %d, seed %d\nreplay (same fault and op choices; timing differs):\n  %s\n", a.n, a.seed, a.replay)
	if a.bug != "" {
		readme = fmt.Sprintf("PLANTED BUG %s in every server (a build with -tags simbugs)\n", a.bug) + readme
	}
	write("README.txt", readme)
	var b strings.Builder
	for i, f := range a.faults {
		fmt.Fprintf(&b, "%d: started %d: %s\n", i+1, f.start.UnixNano(), f)
	}
	write("faults.txt", b.String())
	history := a.rec.History()
	if a.checked != nil {
		history = *a.checked
	}
	if len(history.Ops) > 0 {
		ops := append([]linearizability.Op(nil), history.Ops...)
		sort.SliceStable(ops, func(i, j int) bool { return ops[i].Call < ops[j].Call })
		b.Reset()
		for i := range ops {
			b.WriteString(ops[i].String())
			b.WriteByte('\n')
		}
		write("history.txt", b.String())
	}
	if a.lin != nil && !a.lin.Ok {
		if err := linearizability.WriteVisualization(history, *a.lin, filepath.Join(dir, "porcupine.html")); err != nil {
			t.Logf("artifacts: visualization: %v", err)
		}
	}
	if w := a.watches; len(w.implausible)+len(w.missed) > 0 {
		write("watches.txt", "implausible:\n"+strings.Join(w.implausible, "\n")+"\nmissed:\n"+strings.Join(w.missed, "\n")+"\n")
	}
	if a.op != nil {
		write("reconfigs.txt", a.op.dump())
	}
	for _, nd := range a.c.nodes {
		write(fmt.Sprintf("server-%d.log", nd.id), string(nd.log.all()))
	}
	if a.bug != "" {
		t.Logf("artifacts of the run with %s planted (seed %d): %s", a.bug, a.seed, dir)
		return
	}
	t.Logf("artifacts of the failed run (seed %d): %s", a.seed, dir)
}
