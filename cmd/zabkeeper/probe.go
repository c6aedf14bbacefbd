package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// probeBodyLimit caps how much of a probe's response body is echoed: the
// admin endpoints answer a line or two, and a wrong URL must not flood the
// container log.
const probeBodyLimit = 4096

// runProbe implements "zabkeeper probe URL": one HTTP GET, exit 0 on a 2xx
// answer and 1 otherwise. It exists because the container image is FROM
// scratch and has no shell, curl or wget: a Docker HEALTHCHECK, or an
// operator with `docker exec`, asks the admin server through the binary
// itself (docker exec works even when the container is cut off from every
// network, where a probe from outside cannot reach it).
func runProbe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 2*time.Second, "give up after this long")
	quiet := fs.Bool("q", false, "print nothing; only the exit code tells")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: zabkeeper probe [flags] URL\n\n"+
			"GETs URL (http only, e.g. http://127.0.0.1:7181/readyz) and exits 0 on a 2xx status, 1 otherwise.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, "", stderr); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	u, err := url.Parse(fs.Arg(0))
	if err != nil || u.Scheme != "http" || u.Host == "" {
		fmt.Fprintf(stderr, "zabkeeper probe: want an http://host:port/path URL, got %q\n", fs.Arg(0))
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		fmt.Fprintf(stderr, "zabkeeper probe: %v\n", err)
		return 2
	}
	// No proxy: the probe always means the address it names.
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		if !*quiet {
			fmt.Fprintf(stdout, "probe %s: %v\n", u, err)
		}
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, probeBodyLimit))
	if !*quiet {
		fmt.Fprintf(stdout, "%d %s\n", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if resp.StatusCode/100 != 2 {
		return 1
	}
	return 0
}
