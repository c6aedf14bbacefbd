package zkreal

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStartServesAndStops: ZooKeeper comes up over the given data
// directory, answers four-letter words, writes its files there, and is gone
// after Stop.
func TestStartServesAndStops(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	s := Start(t, Options{DataDir: dataDir, SnapCount: 2, Compression: "gz"})
	out, err := s.FourLetter("ruok")
	if err != nil || strings.TrimSpace(out) != "imok" {
		t.Fatalf("ruok: %q, %v", out, err)
	}
	if out, _ := s.FourLetter("conf"); !strings.Contains(out, "dataDir="+dataDir) {
		t.Fatalf("conf does not show our dataDir:\n%s", out)
	}
	// ZooKeeper snapshots the empty tree at start-up, compressed as asked.
	if _, err := os.Stat(filepath.Join(dataDir, "version-2", "snapshot.0.gz")); err != nil {
		t.Fatalf("no start-up snapshot: %v\n%s", err, s.Log())
	}
	s.Stop()
	if !s.Exited() {
		t.Fatal("still running after Stop")
	}
	s.Stop() // again: nothing
}

// TestEnsembleOfThree: three QuorumPeerMain members on chosen ports elect
// one leader; a member stopped with SIGTERM and launched again on the same
// Options (same port, dataDir and myid) rejoins.
func TestEnsembleOfThree(t *testing.T) {
	Require(t)
	base := t.TempDir()
	var peers []Peer
	var clientPorts []int
	for id := 1; id <= 3; id++ {
		var ports [3]int
		for k := range ports {
			p, err := FreePort()
			if err != nil {
				t.Fatal(err)
			}
			ports[k] = p
		}
		peers = append(peers, Peer{ID: id, QuorumPort: ports[0], ElectionPort: ports[1]})
		clientPorts = append(clientPorts, ports[2])
	}
	opts := make([]Options, 3)
	dirs := make([]string, 3)
	servers := make([]*Server, 3)
	for i := range servers {
		dirs[i] = filepath.Join(base, strconv.Itoa(i+1))
		if err := os.MkdirAll(dirs[i], 0o755); err != nil {
			t.Fatal(err)
		}
		opts[i] = Options{DataDir: filepath.Join(dirs[i], "data"), ClientPort: clientPorts[i],
			MyID: i + 1, Peers: peers}
		s, err := Launch(dirs[i], opts[i])
		if err != nil {
			t.Fatal(err)
		}
		servers[i] = s
		t.Cleanup(s.Stop)
	}
	modes := func() map[string]int {
		m := map[string]int{}
		for _, s := range servers {
			mode, err := s.WaitServing(startTimeout)
			if err != nil {
				t.Fatal(err)
			}
			m[mode]++
		}
		return m
	}
	if m := modes(); m["leader"] != 1 || m["follower"] != 2 {
		t.Fatalf("modes %v, want one leader and two followers", m)
	}
	if b, err := os.ReadFile(filepath.Join(opts[0].DataDir, "myid")); err != nil || strings.TrimSpace(string(b)) != "1" {
		t.Fatalf("myid: %q, %v", b, err)
	}
	if err := servers[0].Terminate(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	s, err := Launch(dirs[0], opts[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	servers[0] = s
	if s.Addr != net.JoinHostPort("127.0.0.1", strconv.Itoa(clientPorts[0])) {
		t.Fatalf("restarted on %s, not its port %d", s.Addr, clientPorts[0])
	}
	if m := modes(); m["leader"] != 1 || m["follower"] != 2 {
		t.Fatalf("after a restart: modes %v, want one leader and two followers", m)
	}
}
