// Command lock runs a job under a distributed lock that Curator's
// InterProcessMutex on the same path also respects. The job stops at once
// if the lock may have been lost.
//
//	go run ./examples/recipes/lock -server 127.0.0.1:2181 -path /locks/nightly-report
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

func main() {
	server := flag.String("server", "127.0.0.1:2181", "ZooKeeper-compatible server(s), comma-separated")
	path := flag.String("path", "/locks/nightly-report", "lock path")
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
	m, err := recipes.NewMutex(c, path, []byte("lock example"))
	if err != nil {
		return err
	}
	held, err := m.Acquire(ctx)
	if err != nil {
		return err
	}
	defer m.Release()
	fmt.Fprintln(out, "holding", path)
	for step := 1; step <= 3; step++ {
		// Check ownership before every step that must not run twice.
		if held.Err() != nil {
			return fmt.Errorf("lock lost before step %d: %w", step, context.Cause(held))
		}
		fmt.Fprintln(out, "step", step)
	}
	return nil
}
