package dockertest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zabkeeper/zabkeeper/server/autojoin"
)

// scaleDigest is the reconfig credential of deploy/compose/scale (its
// zoo.cfg's development superDigest).
const scaleDigest = "super:zabkeeper-dev"

// scaleDeadline bounds a scale step: two servers joining, catching up and
// being promoted one reconfig at a time on two busy cores.
const scaleDeadline = 3 * time.Minute

// newScaleEnsemble prepares deploy/compose/scale: five services of which
// the test starts three first.
func newScaleEnsemble(root, image string) (*ensemble, error) {
	e, err := newEnsemble(root, image, 5)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	e.project = "zkscale" + hex.EncodeToString(b)
	e.file = filepath.Join(root, "deploy", "compose", "scale", "docker-compose.yml")
	return e, nil
}

// members reads the ensemble's configuration through any of ms.
func members(ms []*member) (autojoin.Ensemble, error) {
	var addrs []string
	for _, m := range ms {
		addrs = append(addrs, m.clientAddr())
	}
	conn, _, err := zk.Connect(addrs, 10*time.Second, zk.WithLogger(quiet{}))
	if err != nil {
		return autojoin.Ensemble{}, err
	}
	defer conn.Close()
	if _, err := conn.Sync("/zookeeper/config"); err != nil {
		return autojoin.Ensemble{}, err
	}
	data, _, err := conn.Get("/zookeeper/config")
	if err != nil {
		return autojoin.Ensemble{}, err
	}
	return autojoin.ParseEnsemble(string(data))
}

// reconfigSupport probes whether the servers carry out reconfig, changing
// nothing: a reconfig from a configuration version that cannot be current
// gets BadVersion (or another refusal of this request) from a server that
// implements reconfig, and ReconfigDisabled or Unimplemented from one that
// does not. It returns "" when reconfig is supported, else the answer.
func reconfigSupport(m *member) (string, error) {
	conn, _, err := zk.Connect([]string{m.clientAddr()}, 10*time.Second, zk.WithLogger(quiet{}))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if err := conn.AddAuth("digest", []byte(scaleDigest)); err != nil {
		return "", err
	}
	_, err = conn.IncrementalReconfig(nil, []string{"255"}, 1)
	switch {
	case err == nil:
		return "", errors.New("a reconfig from version 1 succeeded: the probe must not change anything")
	case errors.Is(err, zk.ErrReconfigDisabled), err.Error() == "unknown error: -6":
		return err.Error(), nil
	}
	return "", nil
}

// TestDockerScale grows the compose ensemble from three servers to five
// and back under load: zk-3 and zk-4 start with zabkeeper.autojoin and
// join by themselves (observer, caught up, participant); then `zabkeeper
// members remove` takes them out and they are stopped. No acknowledged
// write may be lost and no session may expire. It needs servers that
// carry out reconfig: against a build that answers reconfig with
// ReconfigDisabled or Unimplemented it skips, saying so.
func TestDockerScale(t *testing.T) {
	root := dockerTestRoot(t)
	var fig figures
	defer func() { t.Logf("figures:\n  %s", strings.Join(fig.lines, "\n  ")) }()
	if !*noBuild {
		if _, err := runFor(buildTimeout, nil, "make", "-C", root, "image", "IMAGE="+*imageFlag); err != nil {
			t.Fatal(err)
		}
	}
	e, err := newScaleEnsemble(root, *imageFlag)
	if err != nil {
		t.Fatal(err)
	}
	initial, added := e.members[:3], e.members[3:]
	e.stopAtEnd(t, "scale-servers.log")
	if _, err := e.compose("config", "-q"); err != nil {
		t.Fatal(err)
	}
	if err := e.upServices(initial...); err != nil {
		t.Fatal(err)
	}
	took, err := e.waitServing(startDeadline, initial)
	if err != nil {
		t.Fatal(err)
	}
	fig.add("3 servers serving %s after up", ms(took))
	answer, err := reconfigSupport(initial[0])
	if err != nil {
		t.Fatal(err)
	}
	if answer != "" {
		t.Skipf("SKIP (server without reconfig): %s answered a reconfig with %q; this 3 -> 5 -> 3 scenario runs once zabkeeper carries out reconfig", initial[0].service, answer)
	}
	before, err := members(initial)
	if err != nil {
		t.Fatal(err)
	}
	fig.add("configuration at start: version %x, %d participants", before.Version, before.Voters())

	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("workload seed %d", seed)
	// The clients know the three first servers only, as clients of a
	// StatefulSet know its Service.
	l, err := startLoad(e.addresses()[:3], nWorkers, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.close)
	if _, err := waitFor(recoverDeadline, "first writes acknowledged", func() (bool, string) {
		n := len(l.rec.Acks())
		return n >= 100, fmt.Sprintf("%d acks", n)
	}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()

	// 3 -> 5: start zk-3 and zk-4 together; nobody runs a command.
	t0 := time.Now()
	if err := e.upServices(added...); err != nil {
		t.Fatal(err)
	}
	if took, err := waitFor(scaleDeadline, "five participants", func() (bool, string) {
		c, err := members(initial)
		if err != nil {
			return false, err.Error()
		}
		return c.Voters() == 5 && len(c.Members) == 5, fmt.Sprintf("version %x: %d members, %d participants", c.Version, len(c.Members), c.Voters())
	}); err != nil {
		t.Fatal(err)
	} else {
		fig.add("3 -> 5: both new servers participants %s after up", ms(took))
	}
	if took, err := e.waitServing(scaleDeadline, e.members); err != nil {
		t.Fatal(err)
	} else {
		fig.add("3 -> 5: all five serving %s later", ms(took))
	}
	fig.add("3 -> 5: longest write pause %s", ms(l.rec.WritePause(t0, time.Now())))

	// A restart of a joined server is not a removal, nor a second join.
	grown, err := members(initial)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := docker("restart", "-t", stopGrace, added[0].container); err != nil {
		t.Fatal(err)
	}
	if _, err := e.waitServing(scaleDeadline, e.members); err != nil {
		t.Fatal(err)
	}
	if after, err := members(initial); err != nil || after.Version != grown.Version {
		t.Fatalf("restarting %s changed the configuration: %v, version %x -> %x", added[0].service, err, grown.Version, after.Version)
	}
	fig.add("restart of %s: configuration unchanged (version %x)", added[0].service, grown.Version)

	// 5 -> 3: remove by reconfig, then stop the containers.
	t0 = time.Now()
	for _, m := range []*member{added[1], added[0]} {
		out, err := docker("exec", initial[0].container, "/zabkeeper", "members", "remove", "--id", fmt.Sprint(m.id))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("members remove --id %d:\n%s", m.id, out)
	}
	if _, err := e.compose("rm", "-s", "-f", added[0].service, added[1].service); err != nil {
		t.Fatal(err)
	}
	shrunk, err := members(initial)
	if err != nil {
		t.Fatal(err)
	}
	if shrunk.Voters() != 3 || len(shrunk.Members) != 3 {
		t.Fatalf("after scaling down: %d members, %d participants:\n%s", len(shrunk.Members), shrunk.Voters(), shrunk)
	}
	if _, err := e.waitServing(recoverDeadline, initial); err != nil {
		t.Fatal(err)
	}
	fig.add("5 -> 3: %s, longest write pause %s", ms(time.Since(t0)), ms(l.rec.WritePause(t0, time.Now())))

	l.close()
	acked, lost, err := l.finalCheck(e.addresses()[:3])
	if err != nil {
		t.Fatal(err)
	}
	unknowns, _ := l.rec.Counts()
	expired := l.rec.ExpiredBetween(start, time.Now())
	fig.add("operations: %d (%d of unknown outcome), acknowledged markers %d, lost %d, sessions expired %d",
		len(l.rec.History().Ops), unknowns, acked, len(lost), expired)
	if len(lost) > 0 {
		t.Errorf("acknowledged writes lost: %d of %d: %v", len(lost), acked, lost)
	}
	if expired > 0 {
		t.Errorf("%d sessions expired while scaling", expired)
	}
	if acked < 50 {
		t.Errorf("only %d acknowledged markers: the workload did too little to check anything", acked)
	}
}
