package server_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/proto"
)

// fixtureNode is a node of the trees in disk/testdata/zk38/*.json: what
// Apache ZooKeeper 3.8 served from the snapshot beside it.
type fixtureNode struct {
	Path     string
	Data     []byte
	Stat     proto.Stat
	ACL      []proto.ACL
	Children []string
}

// TestServesZooKeeperSnapshot starts zabkeeper on a data directory holding
// only a snapshot Apache ZooKeeper 3.8 wrote (plain and snappy) and reads
// the tree ZooKeeper served from it: data, every Stat field, ACLs and
// children.
func TestServesZooKeeperSnapshot(t *testing.T) {
	for fixture, name := range map[string]string{
		"plain.snapshot.13":         "snapshot.13",
		"snappy.snapshot.13.snappy": "snapshot.13.snappy",
	} {
		t.Run(name, func(t *testing.T) {
			src := filepath.Join("..", "disk", "testdata", "zk38", fixture)
			raw, err := os.ReadFile(src)
			require.NoError(t, err)
			js, err := os.ReadFile(src + ".json")
			require.NoError(t, err)
			var want []fixtureNode
			require.NoError(t, json.Unmarshal(js, &want))

			cfg := testConfig(t)
			require.NoError(t, os.MkdirAll(filepath.Join(cfg.DataDir, "version-2"), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(cfg.DataDir, "version-2", name), raw, 0o644))
			addr, _ := startServerCfg(t, cfg)
			c := connect(t, addr)
			require.NoError(t, c.AddAuth("digest", []byte("super:admin")))
			for _, w := range want {
				if w.Path == "/zookeeper/config" {
					continue // the server's own ensemble config, not the file's
				}
				data, st, err := c.Get(w.Path)
				require.NoError(t, err, w.Path)
				require.Equal(t, len(w.Data), len(data), w.Path)
				if len(w.Data) > 0 {
					require.Equal(t, w.Data, data, w.Path)
				}
				got := proto.Stat{Czxid: st.Czxid, Mzxid: st.Mzxid, Ctime: st.Ctime, Mtime: st.Mtime, Version: st.Version,
					Cversion: st.Cversion, Aversion: st.Aversion, EphemeralOwner: st.EphemeralOwner,
					DataLength: st.DataLength, NumChildren: st.NumChildren, Pzxid: st.Pzxid}
				require.Equal(t, w.Stat, got, w.Path)
				acl, _, err := c.GetACL(w.Path)
				require.NoError(t, err, w.Path)
				var gotACL []proto.ACL
				for _, a := range acl {
					gotACL = append(gotACL, proto.ACL{Perms: a.Perms, Id: proto.Id{Scheme: a.Scheme, ID: a.ID}})
				}
				require.Equal(t, w.ACL, gotACL, w.Path)
				children, _, err := c.Children(w.Path)
				require.NoError(t, err, w.Path)
				slices.Sort(children)
				if len(w.Children) == 0 {
					require.Empty(t, children, w.Path)
				} else {
					require.Equal(t, w.Children, children, w.Path)
				}
			}
			// And it takes writes on top.
			_, err = c.Create("/a/new", nil, 0, zk.WorldACL(zk.PermAll))
			require.NoError(t, err)
		})
	}
}
