// Command config keeps a typed configuration value in a znode: it updates
// it with compare-and-set and follows every version a watcher is delivered,
// in commit order.
//
//	go run ./examples/recipes/config -server 127.0.0.1:2181
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/zabkeeper/zabkeeper/recipes"
)

// Limits is the configuration, stored as JSON.
type Limits struct {
	MaxConns int `json:"maxConns"`
}

func main() {
	server := flag.String("server", "127.0.0.1:2181", "ZooKeeper-compatible server(s)")
	path := flag.String("path", "/config/limits", "znode of the value")
	flag.Parse()
	if err := run(context.Background(), *server, *path, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, server, path string, out io.Writer) error {
	c, err := recipes.Connect([]string{server}, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	v, err := recipes.NewValue[Limits](c, path, nil)
	if err != nil {
		return err
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	versions := v.Watch(wctx)
	first := <-versions // the current version (or none)
	fmt.Fprintln(out, "start: exists", first.Exists)

	// Raise the limit three times; each update is a compare-and-set on the
	// version read, retried if another writer got in between. Waiting for
	// the watch after each write makes the watcher see every version.
	for i := 0; i < 3; i++ {
		if _, err := v.Update(ctx, func(cur recipes.Versioned[Limits]) (Limits, error) {
			return Limits{MaxConns: cur.Value.MaxConns + 100}, nil
		}); err != nil {
			return err
		}
		got := <-versions
		if got.Err != nil {
			return got.Err
		}
		fmt.Fprintf(out, "version %d: maxConns=%d\n", got.Version, got.Value.MaxConns)
	}
	return nil
}
