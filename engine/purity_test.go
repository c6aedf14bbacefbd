package engine

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// forbiddenImports are the packages through which a clock, a socket, a file,
// goroutine scheduling or an unseeded random source could leak into the
// engine and break deterministic replay.
var forbiddenImports = map[string]string{
	"os":                                    "files and the environment",
	"net":                                   "sockets",
	"net/http":                              "sockets",
	"time":                                  "the wall clock (time enters as Tick and input stamps)",
	"math/rand":                             "the global random source",
	"math/rand/v2":                          "the global random source",
	"crypto/rand":                           "an unseeded random source",
	"sync":                                  "goroutine coordination (the engine is single-threaded)",
	"sync/atomic":                           "goroutine coordination",
	"syscall":                               "the operating system",
	"runtime":                               "the scheduler",
	"unsafe":                                "memory tricks",
	"io/ioutil":                             "files",
	"log":                                   "output (the caller logs)",
	"log/slog":                              "output (the caller logs)",
	"os/exec":                               "processes",
	"os/signal":                             "signals",
	"path/filepath":                         "the host file system's path rules",
	"github.com/zabkeeper/zabkeeper/server": "the runtime",
	"github.com/zabkeeper/zabkeeper/disk":   "files",
}

// TestEnginePurity parses every non-test Go file under engine/ and fails on a
// forbidden import or a go statement, so the purity boundary of DESIGN.md
// cannot erode silently.
func TestEnginePurity(t *testing.T) {
	fset := token.NewFileSet()
	files := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		for _, v := range purityViolations(fset, f) {
			t.Error(v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 3 {
		t.Fatalf("parsed only %d files; is the test running in engine/?", files)
	}
}

// TestPurityCheckCatchesViolations proves the check above can fail.
func TestPurityCheckCatchesViolations(t *testing.T) {
	src := "package x\nimport (\n\"time\"\n\"sync\"\n)\nfunc f() { go func(){}(); _ = time.Now; var _ sync.Mutex }\n"
	f, err := parser.ParseFile(token.NewFileSet(), "x.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	bad := len(purityViolations(token.NewFileSet(), f))
	if bad != 3 {
		t.Fatalf("found %d violations in a planted file, want 3", bad)
	}
}

// purityViolations lists the forbidden imports and go statements of one file.
func purityViolations(fset *token.FileSet, f *ast.File) []string {
	var out []string
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if why, bad := forbiddenImports[p]; bad {
			out = append(out, fmt.Sprintf("%s imports %q, which would bring %s into the pure engine", fset.Position(imp.Pos()), p, why))
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		if g, ok := n.(*ast.GoStmt); ok {
			out = append(out, fmt.Sprintf("%s starts a goroutine; the engine must stay single-threaded", fset.Position(g.Pos())))
		}
		return true
	})
	return out
}
