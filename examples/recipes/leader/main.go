// Command leader joins a leader election that Curator's LeaderLatch
// processes on the same path take part in, and does leader-only work for as
// long as it leads; when leadership may be lost (connection suspended or
// session expired) the work is cancelled at once, and it waits for the next
// term.
//
//	go run ./examples/recipes/leader -server 127.0.0.1:2181 -id worker-1
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/zabkeeper/zabkeeper/recipes"
)

func main() {
	server := flag.String("server", "127.0.0.1:2181", "ZooKeeper-compatible server(s)")
	path := flag.String("path", "/election/scheduler", "election path")
	id := flag.String("id", "worker", "participant id")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *server, *path, *id, 0, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run leads up to terms times (0: until ctx is done).
func run(ctx context.Context, server, path, id string, terms int, out io.Writer) error {
	c, err := recipes.Connect([]string{server}, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	latch, err := recipes.NewLeaderLatch(c, path, id)
	if err != nil {
		return err
	}
	defer latch.Close()
	for n := 0; terms == 0 || n < terms; n++ {
		term, err := latch.Await(ctx)
		if err != nil {
			return nil // ctx done
		}
		fmt.Fprintln(out, id, "leads")
		if err := lead(term, out); err != nil {
			fmt.Fprintln(out, id, "term ended:", err)
		}
	}
	return nil
}

// lead does one round of leader-only work, unless the term ends first.
func lead(term context.Context, out io.Writer) error {
	t := time.NewTimer(100 * time.Millisecond)
	defer t.Stop()
	select {
	case <-term.Done():
		return context.Cause(term)
	case <-t.C:
		fmt.Fprintln(out, "scheduled the jobs")
		return nil
	}
}
