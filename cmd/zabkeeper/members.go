package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/zabkeeper/zabkeeper/server"
	"github.com/zabkeeper/zabkeeper/server/autojoin"
)

// digestEnv names the environment variable the members command and the
// shipped configurations take the reconfig credential from, so it stays
// off command lines.
const digestEnv = "ZABKEEPER_AUTOJOIN_DIGEST"

// membersUsage is the members command's help.
const membersUsage = `Usage:
  zabkeeper members list   [--server host:port,...]
  zabkeeper members remove --id N [--server host:port,...] [--timeout 2m]

list prints the ensemble's configuration (/zookeeper/config, synced with
the leader). remove takes server N out of the ensemble by reconfig (the
first step of scaling down; then lower the replica count). It reads the
configuration first, does nothing if N is no member, and retries when
another reconfig is in flight. The credential (user:password of a digest
identity allowed to reconfig, the super user by default) is read from
$` + digestEnv + `.
`

// runMembers runs the members command.
func runMembers(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, membersUsage)
		return 2
	}
	sub := args[0]
	fs := flag.NewFlagSet("members "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	servers := fs.String("server", "127.0.0.1:2181", "client addresses of the ensemble, comma separated")
	id := fs.Int("id", 0, "the server id to remove")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	fs.Usage = func() { fmt.Fprint(stderr, membersUsage) }
	if code, ok := parseFlags(fs, args[1:], "members", stderr); !ok {
		return code
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	j := &autojoin.Joiner{Seeds: strings.Split(*servers, ","), Digest: os.Getenv(digestEnv),
		Dial: autojoin.Dial(logger), AttemptTimeout: 15 * time.Second, Logger: logger}
	switch sub {
	case "list":
		e, err := j.Discover(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "zabkeeper members list: %v\n", err)
			return 1
		}
		fmt.Fprint(stdout, e.String())
		return 0
	case "remove":
		if *id < 1 || *id > 255 {
			fmt.Fprintln(stderr, "zabkeeper members remove: --id N (1..255) is required")
			return 2
		}
		e, err := j.Remove(ctx, *id)
		if err != nil {
			fmt.Fprintf(stderr, "zabkeeper members remove: %v\n", err)
			return 1
		}
		fmt.Fprint(stdout, e.String())
		return 0
	default:
		fmt.Fprintf(stderr, "zabkeeper members: unknown subcommand %q\n\n%s", sub, membersUsage)
		return 2
	}
}

// startAutoJoin runs autojoin's Prepare when zabkeeper.autojoin is on,
// settling the members cfg starts with; the returned function runs the
// rest beside the server (nil when autojoin is off).
func startAutoJoin(ctx context.Context, cfg *server.Config, logger *slog.Logger) (func(context.Context), error) {
	if !cfg.AutoJoin.Enabled {
		return nil, nil
	}
	j := &autojoin.Start{Config: cfg, Dial: autojoin.Dial(logger), Logger: logger}
	if err := j.Prepare(ctx); err != nil {
		return nil, err
	}
	return j.Run, nil
}
