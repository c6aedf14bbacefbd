package zkreal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
