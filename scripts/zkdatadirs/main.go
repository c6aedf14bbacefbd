// Command zkdatadirs drives a running ZooKeeper (or zabkeeper) with go-zk so
// that its transaction log holds every txn type a client can cause:
// createSession, create (persistent, ephemeral, sequential), create2,
// createContainer, createTTL, setData, setACL, delete, multi (with check,
// and a failed one), an error txn and closeSession. scripts/zk-datadirs.sh
// runs it against Debian's Apache ZooKeeper 3.8 to make the fixtures under
// disk/testdata. It prints "written <n>" when done and, with -hold, keeps
// its last session open (with an ephemeral) until killed.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-zookeeper/zk"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:2181", "server address")
	root := flag.String("root", "/fx", "parent znode of what is written")
	hold := flag.Bool("hold", false, "keep a session with an ephemeral open until SIGTERM or SIGKILL")
	flag.Parse()
	if err := run(*addr, *root, *hold); err != nil {
		log.Fatal(err)
	}
}

func connect(addr string) (*zk.Conn, error) {
	c, ev, err := zk.Connect(strings.Split(addr, ","), 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		return nil, err
	}
	deadline := time.After(90 * time.Second)
	for {
		select {
		case e := <-ev:
			if e.State == zk.StateHasSession {
				return c, nil
			}
		case <-deadline:
			c.Close()
			return nil, errors.New("no session within 90s")
		}
	}
}

func run(addr, root string, hold bool) error {
	c, err := connect(addr)
	if err != nil {
		return err
	}
	open := zk.WorldACL(zk.PermAll)
	n := 0
	must := func(what string, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		n++
		return nil
	}
	steps := []func() error{
		func() error { _, err := c.Create(root, []byte("root"), 0, open); return must("create root", err) },
		func() error {
			_, err := c.Create(root+"/p", []byte("persistent"), 0, zk.DigestACL(zk.PermAll, "user", "pw"))
			return must("create with digest ACL", err)
		},
		func() error {
			_, err := c.Create(root+"/s-", nil, zk.FlagSequence, open)
			return must("create sequential", err)
		},
		func() error {
			_, err := c.Create(root+"/e", []byte("ephemeral"), zk.FlagEphemeral, open)
			return must("create ephemeral", err)
		},
		func() error {
			_, err := c.CreateContainer(root+"/c", []byte("container"), zk.FlagContainer, open)
			return must("create container", err)
		},
		func() error {
			_, err := c.CreateTTL(root+"/t", []byte("ttl"), zk.FlagTTL, open, time.Hour)
			return must("create TTL", err)
		},
		func() error {
			_, err := c.CreateProtectedEphemeralSequential(root+"/pes", []byte("x"), open)
			return must("create protected ephemeral sequential", err)
		},
		func() error { _, err := c.Set(root, []byte("root2"), -1); return must("setData", err) },
		func() error { _, err := c.Set(root, []byte("root3"), 1); return must("setData with version", err) },
		func() error {
			_, err := c.SetACL(root+"/t", zk.WorldACL(zk.PermRead|zk.PermWrite|zk.PermAdmin), -1)
			return must("setACL", err)
		},
		func() error {
			_, err := c.Multi(&zk.CheckVersionRequest{Path: root, Version: 2},
				&zk.CreateRequest{Path: root + "/m", Data: []byte("m"), Acl: open},
				&zk.SetDataRequest{Path: root + "/m", Data: []byte("m2"), Version: -1},
				&zk.CreateRequest{Path: root + "/m/child", Data: nil, Acl: open, Flags: zk.FlagEphemeral},
				&zk.DeleteRequest{Path: root + "/m/child", Version: -1})
			return must("multi", err)
		},
		func() error {
			_, err := c.Multi(&zk.SetDataRequest{Path: root + "/m", Data: []byte("never"), Version: -1},
				&zk.CheckVersionRequest{Path: root, Version: 99},
				&zk.DeleteRequest{Path: root + "/m", Version: -1})
			if err == nil {
				return errors.New("failed multi: succeeded")
			}
			n++
			return nil
		},
		func() error {
			_, err := c.Create(root+"/p", nil, 0, open)
			if !errors.Is(err, zk.ErrNodeExists) {
				return fmt.Errorf("error txn: %v", err)
			}
			n++
			return nil
		},
		func() error { return must("delete", c.Delete(root+"/s-0000000001", -1)) },
		func() error {
			_, err := c.Create(root+"/utf8-ü", []byte{0, 1, 2, 0xff}, 0, open)
			return must("create non-ASCII", err)
		},
	}
	for _, s := range steps {
		if err := s(); err != nil {
			c.Close()
			return err
		}
	}
	// A second session, closed by the client: closeSession with its
	// ephemeral in paths2Delete.
	c2, err := connect(addr)
	if err != nil {
		return err
	}
	if _, err := c2.Create(root+"/e2", []byte("e2"), zk.FlagEphemeral, open); err != nil {
		return fmt.Errorf("create ephemeral of the second session: %w", err)
	}
	c2.Close()
	if err := waitGone(c, root+"/e2"); err != nil {
		return err
	}
	fmt.Printf("written %d\n", n)
	if !hold {
		c.Close()
		return nil
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	c.Close()
	return nil
}

func waitGone(c *zk.Conn, path string) error {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		ok, _, err := c.Exists(path)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
	}
	return fmt.Errorf("%s still exists after its session closed", path)
}
