// Command discovery registers this process as an instance of a service in
// curator-x-discovery's layout (Java services using Curator see it, and it
// sees them) and picks instances round-robin from a watching cache.
//
//	go run ./examples/recipes/discovery -server 127.0.0.1:2181 -name api -port 8080
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
	server := flag.String("server", "127.0.0.1:2181", "ZooKeeper-compatible server(s)")
	base := flag.String("base", "/services", "discovery base path")
	name := flag.String("name", "api", "service name")
	port := flag.Int("port", 8080, "this instance's port")
	flag.Parse()
	if err := run(context.Background(), *server, *base, *name, *port, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, server, base, name string, port int, out io.Writer) error {
	c, err := recipes.Connect([]string{server}, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	d, err := recipes.NewDiscovery(c, base)
	if err != nil {
		return err
	}
	defer d.Close()
	self := recipes.NewInstance(name, "127.0.0.1", port)
	if self.URISpec, err = recipes.ParseURISpec("{scheme}://{address}:{port}"); err != nil {
		return err
	}
	// Registered until Close, and again after any session expiry.
	if err := d.Register(ctx, self); err != nil {
		return err
	}
	cache := d.NewCache(name)
	defer cache.Close()
	for len(cache.Instances()) == 0 {
		select {
		case <-cache.Changed():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p := recipes.NewProvider(cache, &recipes.RoundRobinStrategy{})
	inst, err := p.Instance()
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "call", inst.URI())
	return nil
}
