package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zabkeeper/zabkeeper/disk"
	"github.com/zabkeeper/zabkeeper/engine"
	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/internal/batchio"
	"github.com/zabkeeper/zabkeeper/internal/procs"
	"github.com/zabkeeper/zabkeeper/netstub"
	"github.com/zabkeeper/zabkeeper/netstub/zktcp"
	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/server/admin"
	"github.com/zabkeeper/zabkeeper/server/tlsconf"
)

// Server is a standalone zabkeeper server: the client listener, the event
// loop that drives engine.Node, and the durable log and snapshots.
type Server struct {
	cfg Config
	log *slog.Logger

	node *engine.Node // owned by the event loop goroutine
	// dynFile is the dynamic config file in use and memberAddrs the
	// peer addresses of the active configuration's other members
	// (reconfig.go); owned by the event loop once it runs.
	dynFile     string
	memberAddrs map[int64]zktcp.Peer
	// nodeMu lets connection goroutines answer reads (Node.ReadNow) while
	// the loop is between inputs: the loop holds it for writing while it
	// feeds the Node and carries out its Ready batches, readers hold it
	// for reading (fastread.go).
	nodeMu sync.RWMutex
	// readLatency caches the latency histogram's children by op, for the
	// reads connection goroutines answer and the loop's replies (fastread.go).
	readLatency readLatency
	// pollers read the frames of established plain-TCP connections
	// (poller_linux.go), started on first use; noPoller is set when they
	// are switched off or failed.
	pollerOnce sync.Once
	pollers    []*poller
	noPoller   atomic.Bool
	wal        *disk.Log
	peers      netstub.Transport // nil for a standalone server; see peers.go
	// zkPeers is peers as what it is.
	zkPeers *zktcp.Transport
	// book is the members' addresses zkPeers prints configurations with
	// (nil without reconfigEnabled), noted the configuration versions it
	// was last told (peerbook.go); the loop owns noted.
	book  *peerBook
	noted struct {
		active, pending int64
		set             bool
	}
	snapDir string
	ln      net.Listener
	// secureLn is the secureClientPort listener, nil without one.
	secureLn net.Listener
	// clientTLS and quorumTLS hold the PEM files of the client ports and
	// of the peer links (nil when not configured); see tls.go.
	clientTLS *tlsconf.Store
	quorumTLS *tlsconf.Store

	events chan event
	done   chan struct{} // closed when the server stops
	// handoff asks the loop to hand leadership over before a stop.
	handoff handoff
	wg      sync.WaitGroup // connection goroutines
	bg      sync.WaitGroup // snapshot and purge goroutines

	nextConn atomic.Uint64
	connMu   sync.Mutex
	conns    map[engine.ConnID]*clientConn
	perIP    map[string]int

	// lookupHost resolves the host names of this server's own listen
	// addresses.
	lookupHost lookupHostFunc

	stats     stats
	startedAt time.Time
	// txnsLogged counts the txns handed to the log writer (Work).
	txnsLogged atomic.Int64
	// loopWrites counts the replies the event loop wrote to a socket
	// itself (conn.go, send), loopWritesShort those of them the socket
	// took only in part (the rest went to the writer goroutine).
	loopWrites, loopWritesShort atomic.Int64
	// loopSends are the replies of the loop's current turn that it writes
	// itself once the turn is over (conn.go, send); the loop's only.
	loopSends []batchSend
	// loopBatch writes loopSends (its Batcher from batchers, for the
	// loop's life); batchers keeps the Batchers of the loop, the pollers
	// and a fan-out's helpers.
	loopBatch sendBatch
	batchers  batcherPool

	// The admin listener and what it reads without touching the loop.
	admin           *admin.Server // nil when admin.enableServer is off
	registry        *prometheus.Registry
	metrics         *admin.Metrics
	beat            atomic.Int64 // unix ns of the loop's last turn
	readiness       atomic.Pointer[readiness]
	figures         atomic.Pointer[ServerInfo]
	figuresAt       time.Time // loop only
	livenessTimeout time.Duration
	// traceMask is what gtmk reports and stmk sets; owned by the event
	// loop. Nothing traces by it (zabkeeper logs with log/slog levels):
	// it is kept for tools that set and read it.
	traceMask int64

	// writeTimeout is how long a client may take to accept each write
	// before its connection is closed; sessionlessTimeout how long a
	// connection may take to send its ConnectRequest. Tests shorten them.
	writeTimeout       time.Duration
	sessionlessTimeout time.Duration
	stopOnce           sync.Once

	// oidc verifies tokens of the oidc auth scheme (nil: none configured);
	// oidcRefused counts refused tokens. audit is the audit log (nil: off).
	oidc        *oidcVerifier
	oidcRefused atomic.Int64
	audit       *auditLog
	// quotaLogged and quotaSuppressed pace quota warnings (quota.go);
	// loop only.
	quotaLogged     time.Time
	quotaSuppressed int
	// tlsHS counts and paces the client TLS handshakes (tlsguard.go).
	tlsHS tlsHandshakes
}

// New opens the data directories, recovers the state from the newest valid
// snapshot and the log, and binds the client port (and the quorum port of
// an ensemble member). Serve then runs it. A listen address that does not
// resolve is an error; NewContext waits for it instead.
func New(cfg Config, logger *slog.Logger) (*Server, error) {
	return newServer(context.Background(), false, cfg, logger, net.DefaultResolver.LookupHost)
}

// NewContext is New, except that binding a listener whose host name does
// not resolve yet (or not to this machine yet) is retried with backoff until
// it binds or ctx ends, as a Kubernetes pod needs whose own headless-service
// name appears in DNS only once it is about ready.
func NewContext(ctx context.Context, cfg Config, logger *slog.Logger) (*Server, error) {
	return newServer(ctx, true, cfg, logger, net.DefaultResolver.LookupHost)
}

func newServer(ctx context.Context, retry bool, cfg Config, logger *slog.Logger, lookup lookupHostFunc) (*Server, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:         cfg,
		dynFile:     cfg.Dynamic.File,
		memberAddrs: cfg.zkPeers(),
		log:         logger,
		events:      make(chan event, 4096),
		done:        make(chan struct{}),
		handoff:     newHandoff(),
		conns:       map[engine.ConnID]*clientConn{},
		perIP:       map[string]int{},
		lookupHost:  lookup,
		startedAt:   time.Now(),

		traceMask: DefaultTraceMask,

		livenessTimeout:    livenessTimeout(cfg.TickTime),
		writeTimeout:       defaultWriteTimeout,
		sessionlessTimeout: defaultSessionlessTimeout,
	}
	s.beat.Store(s.startedAt.UnixNano())
	s.stats.reset()
	s.newMetrics()
	if err := s.initSecurity(); err != nil {
		return nil, err
	}
	started := false
	defer func() {
		if !started && s.audit != nil {
			s.audit.close()
		}
	}()
	if err := s.recover(); err != nil {
		return nil, err
	}
	if err := s.openTLS(); err != nil {
		_ = s.wal.Close()
		return nil, err
	}
	if err := s.openPeers(ctx, retry); err != nil {
		_ = s.wal.Close()
		s.closeTLS()
		return nil, err
	}
	if err := s.openClientListeners(ctx, retry); err != nil {
		_ = s.wal.Close()
		if s.peers != nil {
			_ = s.peers.Close()
		}
		s.closeTLS()
		return nil, err
	}
	if err := s.openAdmin(); err != nil {
		s.closeClientListeners()
		_ = s.wal.Close()
		if s.peers != nil {
			_ = s.peers.Close()
		}
		s.closeTLS()
		return nil, err
	}
	started = true
	return s, nil
}

// recover builds the Node from disk.
func (s *Server) recover() error {
	// disk keeps its files under <dir>/version-2, as ZooKeeper does.
	logDir := s.cfg.DataLogDir
	s.snapDir = s.cfg.DataDir
	// The epoch files live in the snapshot directory's version-2.
	for _, d := range []string{logDir, filepath.Join(s.snapDir, "version-2")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("server: create %s: %w", d, err)
		}
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return fmt.Errorf("server: session secret: %w", err)
	}
	prealloc := int64(s.cfg.PreAllocSizeKB) << 10
	if prealloc == 0 {
		prealloc = -1 // none, as ZooKeeper's preAllocSize=0
	}
	wal, err := disk.OpenLog(logDir, disk.LogOptions{FS: s.cfg.LogFS, Logger: s.log, TruncateCorruptTail: s.cfg.TruncateCorruptTail,
		PreallocSize: prealloc})
	if errors.Is(err, disk.ErrCorruptTail) {
		return fmt.Errorf("server: open txn log: %w (to drop that record and start from the log before it, "+
			"run zabkeeper server --truncate-corrupt-tail once; in an ensemble the other servers may still hold the txn)", err)
	}
	if err != nil {
		return fmt.Errorf("server: open txn log: %w", err)
	}
	s.wal = wal
	start := time.Now()
	var d engine.Durable
	foundEpochs, err := s.readEpochs(&d.HardState)
	if err != nil {
		_ = wal.Close()
		return err
	}
	voters, observers := s.cfg.ensemble()
	ecfg := engine.Config{
		ServerID:          int64(s.cfg.ServerID),
		TickMs:            s.cfg.TickTime,
		TicksPerTickTime:  ticksPerTickTime(s.cfg.TickTime),
		MinSessionTimeout: s.cfg.MinSessionTimeout,
		MaxSessionTimeout: s.cfg.MaxSessionTimeout,
		Tree: tree.Options{SuperDigest: s.cfg.SuperDigest, ExtendedTypes: s.cfg.ExtendedTypes,
			MaxTxnSize: proto.TxnLimit(s.cfg.JuteMaxBuffer), EnforceQuota: s.cfg.Security.EnforceQuota,
			ConfigData: s.cfg.ensembleConfigData(), ConfigVersion: s.cfg.Dynamic.Version},
		ReconfigEnabled:    s.cfg.Dynamic.ReconfigEnabled,
		StandaloneEnabled:  s.cfg.Dynamic.StandaloneEnabled,
		SessionSecret:      secret,
		StartTime:          time.Now().UnixMilli(),
		ReapIntervalTicks:  max(1, s.cfg.ContainerCheckInterval/s.cfg.TickTime),
		InitLimit:          s.cfg.InitLimit,
		SyncLimit:          s.cfg.SyncLimit,
		MaxLogEntries:      s.cfg.CommitLogCount,
		SnapshotSizeFactor: s.cfg.SnapshotSizeFactor,
		ReadOnlyMode:       s.cfg.ReadOnlyMode,
		Voters:             voters,
		Observers:          observers,
		Seed:               randomSeed(),
		// What the engine sends each peer beyond ZooKeeper's protocol
		// follows the capabilities the peer transport stamps per link.
	}
	// The snapshot is read straight from its file into the tree.
	snapFound := false
	last, err := disk.Recover(s.snapDir, wal, func(zxid int64, body io.Reader) error {
		loaded, err := engine.ReadSnapshot(ecfg, zxid, body)
		d.SnapshotZxid, d.Loaded, snapFound = zxid, loaded, true
		return err
	}, func(r disk.Record) error {
		// A txn the engine cannot apply stops the start here, naming the
		// file, rather than at apply.
		if _, err := tree.UnmarshalTxn(r.Data); err != nil {
			return fmt.Errorf("%w; zabkeeper cannot apply this txn, so it cannot start from this log", err)
		}
		d.Log = append(d.Log, zab.Entry{Zxid: r.Zxid, Data: r.Data})
		return nil
	})
	if err != nil {
		_ = wal.Close()
		return fmt.Errorf("server: recover from %s and %s: %w", s.snapDir, logDir, err)
	}
	defaultEpochs(&d.HardState, foundEpochs, last)
	s.node, err = engine.Restore(ecfg, d)
	if err != nil {
		_ = wal.Close()
		return fmt.Errorf("server: restore state: %w", err)
	}
	if err := s.node.Halted(); err != nil {
		// A standalone server knows at once that it may never serve.
		_ = wal.Close()
		return fmt.Errorf("server: restore state: %w", err)
	}
	s.log.Info("recovered", "zxid", fmt.Sprintf("0x%x", last), "snapshot", fmt.Sprintf("0x%x", d.SnapshotZxid),
		"txns_in_log", len(d.Log), "took", time.Since(start))
	if !snapFound {
		// Apache ZooKeeper refuses a dataDir with txns in its log and no
		// snapshot ("No snapshot found, but there are log entries") and
		// snapshots at every start (ZooKeeperServer.loadData): so does
		// this server when it found none, so that ZooKeeper can run on
		// its dataDir (the rolling migration back).
		zxid, write := s.node.Snapshot()
		if err := s.writeSnapshot(zxid, write); err != nil {
			_ = wal.Close()
			return err
		}
	}
	return nil
}

// Epoch files, named as ZooKeeper names them, in <dataDir>/version-2.
const (
	acceptedEpochFile = disk.AcceptedEpochFile
	currentEpochFile  = disk.CurrentEpochFile
)

// readEpochs reads the epoch files; found tells which exist.
func (s *Server) readEpochs(hs *zab.HardState) (found map[string]bool, err error) {
	found = map[string]bool{}
	for _, f := range []struct {
		name string
		v    *int64
	}{{acceptedEpochFile, &hs.AcceptedEpoch}, {currentEpochFile, &hs.CurrentEpoch}} {
		v, ok, err := disk.ReadEpochFile(disk.EpochFilePath(s.cfg.DataDir, f.name))
		if err != nil {
			return nil, fmt.Errorf("server: read %s: %w", f.name, err)
		}
		*f.v, found[f.name] = v, ok
	}
	return found, nil
}

// defaultEpochs fills in missing epoch files as ZooKeeper does
// (QuorumPeer.loadDataBase: "... not found! Creating with a reasonable
// default"): currentEpoch from the epoch of the last zxid, acceptedEpoch
// from currentEpoch. A data directory of a standalone ZooKeeper has none.
func defaultEpochs(hs *zab.HardState, found map[string]bool, last int64) {
	if !found[currentEpochFile] {
		hs.CurrentEpoch = max(hs.CurrentEpoch, zab.Epoch(last))
	}
	if !found[acceptedEpochFile] {
		hs.AcceptedEpoch = max(hs.AcceptedEpoch, hs.CurrentEpoch)
	}
}

// writeEpochs makes the protocol's epochs durable before anything that
// depends on them is sent.
func (s *Server) writeEpochs(hs zab.HardState) error {
	if err := disk.WriteEpochFile(disk.EpochFilePath(s.cfg.DataDir, acceptedEpochFile), hs.AcceptedEpoch); err != nil {
		return fmt.Errorf("server: make accepted epoch %d durable in %s: %w", hs.AcceptedEpoch, acceptedEpochFile, err)
	}
	if err := disk.WriteEpochFile(disk.EpochFilePath(s.cfg.DataDir, currentEpochFile), hs.CurrentEpoch); err != nil {
		return fmt.Errorf("server: make current epoch %d durable in %s: %w", hs.CurrentEpoch, currentEpochFile, err)
	}
	return nil
}

// Addr returns the address the client listener is bound to.
// Without a plain port (only secureClientPort) it is the TLS listener's.
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return s.secureLn.Addr()
	}
	return s.ln.Addr()
}

// Serve accepts clients and runs the event loop until ctx is cancelled, then
// shuts down cleanly: the client listener closes, a leader hands leadership
// over to its most up-to-date follower (waiting at most handoffTimeout), every
// connection closes (its client reconnects elsewhere with its session), and
// the log is synced and closed.
func (s *Server) Serve(ctx context.Context) error {
	s.log.Info("serving", "addr", s.Addr().String(), "dataDir", s.cfg.DataDir, "dataLogDir", s.cfg.DataLogDir)
	if err := batchio.Available(); err != nil {
		s.log.Info("socket batches and fsyncs without io_uring: one system call each", "reason", err)
	} else {
		s.log.Debug("socket batches and fsyncs through io_uring")
	}
	if s.admin != nil {
		s.log.Info("admin listener serving", "addr", s.admin.Addr().String())
		s.admin.Serve()
	}
	persisted := make(chan int64, 1)
	writer := newWALWriter(s.wal, persisted, s.log, s.metrics)
	loopDone := make(chan error, 1)
	go func() { loopDone <- s.loop(writer, persisted) }()
	if s.ln != nil {
		go s.accept(s.ln, s.plainMode())
	}
	if s.secureLn != nil {
		s.log.Info("serving TLS clients", "addr", s.secureLn.Addr().String())
		go s.accept(s.secureLn, modeTLS)
	}

	var loopErr error
	select {
	case <-ctx.Done():
		s.gracefulHandoff(loopDone)
	case loopErr = <-loopDone:
		loopDone <- loopErr
	}
	s.stop()
	s.closeClientListeners()
	loopErr = <-loopDone
	if errors.Is(loopErr, syscall.EMFILE) || errors.Is(loopErr, syscall.ENFILE) {
		loopErr = fmt.Errorf("%w (the process ran out of file descriptors: raise its open-file limit, ulimit -n)", loopErr)
	}
	if s.peers != nil {
		// Only the loop used the peer links: closing them now tells the
		// other servers at once, whatever the client connections take.
		_ = s.peers.Close()
	}
	if s.admin != nil {
		s.admin.Close()
	}
	writer.close()
	s.connMu.Lock()
	for _, c := range s.conns {
		c.shutdown()
	}
	s.connMu.Unlock()
	s.wg.Wait()
	s.bg.Wait()
	if s.loopBatch.b != nil {
		s.batchers.put(s.loopBatch.b)
		s.loopBatch.b = nil
	}
	s.batchers.close()
	s.closeTLS()
	if err := s.wal.Close(); err != nil && loopErr == nil {
		loopErr = fmt.Errorf("server: close txn log: %w", err)
	}
	if s.audit != nil {
		s.audit.close()
	}
	s.log.Info("stopped", "zxid", fmt.Sprintf("0x%x", s.node.LastZxid()))
	return loopErr
}

// gracefulHandoff stops taking clients and lets the loop hand leadership
// over, for at most handoffTimeout.
func (s *Server) gracefulHandoff(loopDone chan error) {
	if s.peers == nil {
		return
	}
	s.closeClientListeners() // reconnecting clients go to the other servers
	close(s.handoff.request)
	timer := time.NewTimer(handoffTimeout)
	defer timer.Stop()
	select {
	case <-s.handoff.done:
	case <-timer.C:
		s.log.Warn("leadership handoff unfinished; stopping anyway", "waited", handoffTimeout)
	case err := <-loopDone:
		loopDone <- err
	}
}

// background runs f on its own goroutine; Serve waits for it before it
// closes the log.
func (s *Server) background(f func()) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		f()
	}()
}

func (s *Server) stop() { s.stopOnce.Do(func() { close(s.done) }) }

// Accept retry pacing: after a failed accept the listener pauses, from
// acceptMinBackoff doubling up to acceptMaxBackoff (as net/http does), and a
// failure is logged at most once per acceptLogEvery.
const (
	acceptMinBackoff = 5 * time.Millisecond
	acceptMaxBackoff = time.Second
	acceptLogEvery   = 10 * time.Second
)

// accept admits client connections, enforcing maxClientCnxns per address,
// until the listener closes. A failed accept (EMFILE when the process is out
// of file descriptors, ENFILE, ENOBUFS ...) pauses and retries, as ZooKeeper
// does, rather than ending the listener for good: the connections that hold
// the descriptors close, and clients are admitted again.
func (s *Server) accept(ln net.Listener, mode connMode) {
	var backoff time.Duration
	var lastLog time.Time
	failed, logged := 0, false
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = min(max(2*backoff, acceptMinBackoff), acceptMaxBackoff)
			failed++
			if now := time.Now(); now.Sub(lastLog) >= acceptLogEvery {
				s.log.Error("accept failed; retrying", "err", err, "retry_in", backoff, "failures", failed)
				lastLog, failed, logged = now, 0, true
			}
			select {
			case <-time.After(backoff):
				continue
			case <-s.done:
				return
			}
		}
		if backoff > 0 && logged {
			s.log.Info("accepting clients again", "failures_since_last_log", failed)
			failed, logged = 0, false
		}
		backoff = 0
		id := engine.ConnID(s.nextConn.Add(1))
		c := newClientConn(s, id, nc, mode)
		s.connMu.Lock()
		if s.cfg.MaxClientCnxns > 0 && s.perIP[c.ip] >= s.cfg.MaxClientCnxns {
			s.connMu.Unlock()
			s.log.Warn("too many connections from one address; closing", "ip", c.ip, "max", s.cfg.MaxClientCnxns)
			_ = nc.Close()
			continue
		}
		select {
		case <-s.done:
			s.connMu.Unlock()
			_ = nc.Close()
			return
		default:
		}
		if !s.admitHandshake(c) {
			s.connMu.Unlock()
			s.handshakeRefused(c)
			_ = nc.Close()
			continue
		}
		s.perIP[c.ip]++
		s.conns[id] = c
		s.wg.Add(1)
		s.connMu.Unlock()
		go func() {
			defer s.wg.Done()
			c.run()
			s.connMu.Lock()
			delete(s.conns, id)
			if s.perIP[c.ip]--; s.perIP[c.ip] <= 0 {
				delete(s.perIP, c.ip)
			}
			s.connMu.Unlock()
		}()
	}
}

func (s *Server) conn(id engine.ConnID) *clientConn {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	return s.conns[id]
}

// post hands an event to the loop; false once the server is stopping.
func (s *Server) post(ev event) bool {
	// The common case, room in the queue, without a select over two
	// channels (every write request passes here).
	select {
	case s.events <- ev:
		return true
	default:
	}
	select {
	case s.events <- ev:
		return true
	case <-s.done:
		return false
	}
}

// writeSnapshot writes one snapshot (autopurge runs on its own timer); it runs on its own
// goroutine while the loop goes on.
func (s *Server) writeSnapshot(zxid int64, write func(io.Writer) error) error {
	// The snapshot runs beside the event loop, not on its P.
	defer procs.Lend()()
	start := time.Now()
	path, err := disk.WriteSnapshotCompressedFS(nil, s.snapDir, zxid, s.cfg.SnapshotCompression, write)
	if err != nil {
		return fmt.Errorf("server: snapshot at 0x%x: %w", zxid, err)
	}
	took := time.Since(start)
	s.metrics.SnapshotDuration.Observe(took.Seconds())
	if fi, err := os.Stat(path); err == nil {
		s.metrics.SnapshotSize.Observe(float64(fi.Size()))
	}
	s.log.Info("snapshot written", "path", path, "zxid", fmt.Sprintf("0x%x", zxid), "took", took)
	return nil
}

// purge deletes snapshots beyond autopurge.snapRetainCount and the log
// segments only they needed.
func (s *Server) purge() error {
	oldest, err := disk.PurgeSnapshots(s.snapDir, s.cfg.SnapRetainCount, s.log)
	if err != nil {
		return fmt.Errorf("server: purge snapshots: %w", err)
	}
	if oldest > 0 {
		if err := s.wal.PurgeBefore(oldest); err != nil {
			return fmt.Errorf("server: purge txn log before 0x%x: %w", oldest, err)
		}
	}
	return nil
}
