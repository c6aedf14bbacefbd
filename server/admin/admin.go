// Package admin is zabkeeper's admin HTTP listener: ZooKeeper's AdminServer
// commands as JSON under /commands, the Kubernetes-style probes /livez and
// /readyz, and Prometheus metrics under /metrics, all on one port.
//
// The package knows nothing of the server's internals: the server hands it a
// Source that runs commands and answers the probes, and a Prometheus
// gatherer. Nothing here may block the server's event loop; a Source answers
// the probes from figures the loop has already published.
package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultPort is the admin listener's port when admin.serverPort is not set.
// ZooKeeper's AdminServer defaults to 8080, which collides with half the
// HTTP services of a host or pod (proxies, sidecars, Tomcat, Jenkins); 7181
// keeps ZooKeeper's "x181" family (2181 clients) and is free of such use.
const DefaultPort = 7181

// DefaultAddress is the admin listener's address when admin.serverAddress is
// not set: all interfaces, as in ZooKeeper.
const DefaultAddress = "0.0.0.0"

// CommandURL is the path under which commands are served, ZooKeeper's
// admin.commandURL default.
const CommandURL = "/commands"

// Limits keep the listener alive when clients send garbage or stall.
type Limits struct {
	// ReadHeaderTimeout is how long a client may take to send its headers,
	// ReadTimeout its whole request.
	ReadHeaderTimeout, ReadTimeout time.Duration
	// WriteTimeout bounds writing a reply.
	WriteTimeout time.Duration
	// IdleTimeout closes an idle keep-alive connection.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers; larger ones get 431.
	MaxHeaderBytes int
}

// DefaultLimits are the limits the server uses: a 30 s idle timeout as
// ZooKeeper's admin.idleTimeout, short deadlines for the rest.
func DefaultLimits() Limits {
	return Limits{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}

// Field is one key of a command's response; responses keep their keys in the
// order ZooKeeper writes them.
type Field struct {
	Key   string
	Value any
}

// Response is the answer of one command, written as ZooKeeper's
// CommandResponse.toMap: "command" (the primary name), "error" (null when
// none), then the command's own keys.
type Response struct {
	// Command is the command's primary name, or the name asked for when no
	// command has it.
	Command string
	// Error is what went wrong, "" for success.
	Error string
	// Fields are the command's keys in order.
	Fields []Field
}

// MarshalJSON writes the response as one JSON object with its keys in order.
func (r Response) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	write := func(i int, k string, v any) error {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return err
		}
		vb, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("admin: encode %s of %s: %w", k, r.Command, err)
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
		return nil
	}
	var errVal any
	if r.Error != "" {
		errVal = r.Error
	}
	if err := write(0, "command", r.Command); err != nil {
		return nil, err
	}
	if err := write(1, "error", errVal); err != nil {
		return nil, err
	}
	for i, f := range r.Fields {
		if f.Key == "command" || f.Key == "error" {
			continue
		}
		if err := write(i+2, f.Key, f.Value); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Command names one command: its primary name and the aliases it also
// answers to (the four-letter word among them).
type Command struct {
	Name    string
	Aliases []string
}

// Source is what the admin listener asks the server. Every method may be
// called from many HTTP goroutines at once.
type Source interface {
	// Commands lists the commands, each once.
	Commands() []Command
	// Run runs the command with the given name or alias; ok is false when
	// there is none. It returns when ctx ends even if the server is stuck.
	Run(ctx context.Context, name string) (resp Response, ok bool)
	// Live reports whether the process and its event loop are alive, and
	// why not. It must never block.
	Live() (ok bool, reason string)
	// Ready reports whether the server serves clients with current data,
	// and why not. It must never block.
	Ready() (ok bool, reason string)
}

// CommandTimeout bounds how long a command may wait for the server.
const CommandTimeout = 10 * time.Second

// Server is the admin HTTP listener.
type Server struct {
	ln   net.Listener
	http *http.Server
	log  *slog.Logger
	done chan struct{}
}

// Listen binds the admin listener to addr (host:port; port 0 picks a free
// one). Serve starts answering.
func Listen(addr string, src Source, gatherer prometheus.Gatherer, logger *slog.Logger, lim Limits) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin: listen on %s: %w", addr, err)
	}
	s := &Server{ln: ln, log: logger, done: make(chan struct{})}
	s.http = &http.Server{
		Handler:           Handler(src, gatherer, logger),
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		// Garbage on the port is the client's problem: keep it out of the
		// server's warnings.
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// Addr returns the address the listener is bound to.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve answers requests until Close; it returns at once.
func (s *Server) Serve() {
	go func() {
		defer close(s.done)
		if err := s.http.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin listener failed", "err", err)
		}
	}()
}

// Close stops the listener, waits briefly for requests in flight, then
// closes every connection.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.http.Shutdown(ctx); err != nil {
		_ = s.http.Close()
	}
	select {
	case <-s.done:
	default:
		// Serve was never called.
		_ = s.ln.Close()
	}
}

// Handler routes the admin endpoints; gatherer may be nil (no /metrics).
func Handler(src Source, gatherer prometheus.Gatherer, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/livez", func(w http.ResponseWriter, r *http.Request) {
		probe(w, r, src.Live)
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		probe(w, r, src.Ready)
	})
	commands := func(w http.ResponseWriter, r *http.Request) {
		if !getOnly(w, r) {
			return
		}
		name := strings.Trim(strings.TrimPrefix(r.URL.Path, CommandURL), "/")
		if name == "" {
			listCommands(w, src)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), CommandTimeout)
		defer cancel()
		resp, ok := src.Run(ctx, name)
		if !ok {
			// ZooKeeper answers unknown commands with 200 and an error.
			resp = Response{Command: name, Error: "Unknown command: " + name}
		}
		body, err := json.MarshalIndent(resp, "", "  ")
		if err != nil {
			logger.Error("admin command response", "command", name, "err", err)
			http.Error(w, "cannot encode the response", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(append(body, '\n'))
	}
	mux.HandleFunc(CommandURL, commands)
	mux.HandleFunc(CommandURL+"/", commands)
	if gatherer != nil {
		mux.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{
			ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
			ErrorHandling: promhttp.ContinueOnError,
			Timeout:       CommandTimeout,
		}))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		if !getOnly(w, r) {
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "zabkeeper admin: /commands /livez /readyz /metrics\n")
	})
	return mux
}

// probe answers a probe: 200 and "ok", or 503 and the reason.
func probe(w http.ResponseWriter, r *http.Request, check func() (bool, string)) {
	if !getOnly(w, r) {
		return
	}
	ok, reason := check()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, reason+"\n")
		return
	}
	_, _ = io.WriteString(w, "ok\n")
}

// listCommands answers /commands as ZooKeeper does: a link per primary name,
// sorted.
func listCommands(w http.ResponseWriter, src Source) {
	var names []string
	for _, c := range src.Commands() {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "<a href=\"%s/%s\">%s</a>\n<br/>\n", CommandURL, n, n)
	}
	_, _ = io.WriteString(w, b.String())
}

// getOnly refuses methods other than GET and HEAD: every endpoint here only
// reads.
func getOnly(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}
