package linearizability

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteVisualization(t *testing.T) {
	dir := t.TempDir()
	good := hist(
		mkCreate(1, 0, 10, "/a", "x", ModeEphemeral, 0, "/a"),
		mkCreate(2, 5, 15, "/a", "y", 0, ErrNodeExists, ""),
		mkSet(1, 20, Unknown, "/a", "z", -1, 0, 0),
		mkSync(2, 30, 35, "/a"),
		mkGet(2, 36, 40, "/a", 0, "x", 0, true),
	)
	bad := hist(
		mkCreate(1, 0, 10, "/a", "x", 0, 0, "/a"),
		mkCreate(2, 20, 30, "/a", "y", 0, 0, "/a"),
	)
	for name, h := range map[string]History{"good": good, "bad": bad} {
		res := mustCheck(t, h)
		if res.Ok != (name == "good") {
			t.Fatalf("%s: %v", name, res)
		}
		path := filepath.Join(dir, name+".html")
		if err := WriteVisualization(h, res, path); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		html := string(b)
		for _, want := range []string{"<html", `create(/a, \"x\", `} {
			if !strings.Contains(html, want) {
				t.Errorf("%s: visualization lacks %q", name, want)
			}
		}
	}
	if html, _ := os.ReadFile(filepath.Join(dir, "good.html")); !strings.Contains(string(html), "outcome unknown") || !strings.Contains(string(html), "sync+read") {
		t.Error("good: pending op or sync+read not described")
	}

	// A zero Result: the check is rerun to get the data.
	path := filepath.Join(dir, "rerun.html")
	if err := WriteVisualization(bad, Result{}, path); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		t.Fatalf("rerun visualization missing: %v", err)
	}
}

func TestDescribeState(t *testing.T) {
	st := initialState()
	_, st = applyWrite(st, 7, &Op{Kind: Create, Path: "/e", Data: []byte("d"), Mode: ModeEphemeral})
	_, st = applyWrite(st, 8, &Op{Kind: CloseSession})
	if got, want := st.String(), `{/e="d" v0 eph(s0x7)} closed: s0x8`; got != want {
		t.Fatalf("State.String() = %q, want %q", got, want)
	}
}
