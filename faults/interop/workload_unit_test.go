package interop

import (
	"strings"
	"testing"

	"github.com/go-zookeeper/zk"
)

// TestDiffTrees: the tree comparison finds a znode missing on either
// side, different data, a different Stat field and different children,
// and nothing in equal trees.
func TestDiffTrees(t *testing.T) {
	base := func() map[string]nodeView {
		return map[string]nodeView{
			"/":    {children: []string{"a"}, stat: zk.Stat{Cversion: 1, Pzxid: 5}},
			"/a":   {data: []byte("x"), stat: zk.Stat{Czxid: 5, Mzxid: 5}, children: []string{"b"}},
			"/a/b": {stat: zk.Stat{Czxid: 6, EphemeralOwner: 7}},
		}
	}
	if d := diffTrees(base(), base()); len(d) != 0 {
		t.Fatalf("equal trees differ: %v", d)
	}
	cases := map[string]func(m map[string]nodeView){
		"missing on the second": func(m map[string]nodeView) { delete(m, "/a/b") },
		"only on the second":    func(m map[string]nodeView) { m["/c"] = nodeView{} },
		"data":                  func(m map[string]nodeView) { v := m["/a"]; v.data = []byte("y"); m["/a"] = v },
		"Stat":                  func(m map[string]nodeView) { v := m["/a/b"]; v.stat.EphemeralOwner = 8; m["/a/b"] = v },
		"children":              func(m map[string]nodeView) { v := m["/"]; v.children = []string{"a", "c"}; m["/"] = v },
	}
	for want, change := range cases {
		b := base()
		change(b)
		d := diffTrees(base(), b)
		if len(d) != 1 || !strings.Contains(d[0], want) {
			t.Errorf("%s: diff %v", want, d)
		}
	}
}
