package main

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zabkeeper/zabkeeper/internal/zkreal"
	"github.com/zabkeeper/zabkeeper/server/autojoin"
)

// TestMembersAgainstZooKeeper runs `zabkeeper members` against a real
// ZooKeeper 3.8 ensemble with reconfig on: list prints the members,
// remove takes one out, removing it again does nothing, and the
// credential comes from $ZABKEEPER_AUTOJOIN_DIGEST.
func TestMembersAgainstZooKeeper(t *testing.T) {
	zkreal.Require(t)
	const password = "members-test"
	sum := sha1.Sum([]byte("super:" + password))
	superDigest := "super:" + base64.StdEncoding.EncodeToString(sum[:])
	type node struct{ q, e, c int }
	nodes := make([]node, 3)
	var lines []string
	for i := range nodes {
		for _, p := range []*int{&nodes[i].q, &nodes[i].e, &nodes[i].c} {
			port, err := zkreal.FreePort()
			if err != nil {
				t.Fatal(err)
			}
			*p = port
		}
		lines = append(lines, fmt.Sprintf("server.%d=127.0.0.1:%d:%d:participant;127.0.0.1:%d", i+1, nodes[i].q, nodes[i].e, nodes[i].c))
	}
	var servers []*zkreal.Server
	var addrs []string
	for i, n := range nodes {
		dir := t.TempDir()
		dyn := filepath.Join(dir, "zoo.cfg.dynamic.0")
		if err := os.WriteFile(dyn, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := zkreal.Launch(dir, zkreal.Options{DataDir: filepath.Join(dir, "data"), MyID: i + 1, ClientPort: n.c,
			Config: map[string]string{"reconfigEnabled": "true", "dynamicConfigFile": dyn},
			Props:  map[string]string{"zookeeper.DigestAuthenticationProvider.superDigest": superDigest}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
		servers, addrs = append(servers, s), append(addrs, s.Addr)
	}
	for _, s := range servers {
		if _, err := s.WaitServing(90 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	members := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(append([]string{"members"}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	server := "--server=" + strings.Join(addrs, ",")

	code, out, errOut := members("list", server)
	e, err := autojoin.ParseEnsemble(out)
	if code != 0 || err != nil || len(e.Members) != 3 {
		t.Fatalf("members list: exit %d, %v:\n%s%s", code, err, out, errOut)
	}
	if code, _, errOut := members("remove", server, "--id", "3"); code != 1 || !strings.Contains(errOut, "not allowed") {
		t.Fatalf("remove without the credential: exit %d, %s; want 1 and the reason", code, errOut)
	}
	t.Setenv(digestEnv, "super:"+password)
	code, out, errOut = members("remove", server, "--id", "3")
	after, err := autojoin.ParseEnsemble(out)
	if code != 0 || err != nil || len(after.Members) != 2 || after.Version <= e.Version {
		t.Fatalf("members remove --id 3: exit %d, %v:\n%s%s", code, err, out, errOut)
	}
	code, out, _ = members("remove", server, "--id", "3")
	again, err := autojoin.ParseEnsemble(out)
	if code != 0 || err != nil || again.Version != after.Version {
		t.Fatalf("removing 3 again: exit %d, version %x -> %x; want no change", code, after.Version, again.Version)
	}
	if code, _, _ := members("remove", server); code != 2 {
		t.Fatalf("remove without --id: exit %d, want 2", code)
	}
}
