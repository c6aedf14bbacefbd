package server

import (
	"log/slog"
	"sync"
	"time"

	"github.com/zabkeeper/zabkeeper/disk"
	"github.com/zabkeeper/zabkeeper/engine"
	"github.com/zabkeeper/zabkeeper/server/admin"
)

// walWriter appends the Node's entries to the log on its own goroutine and
// reports what is durable. Batches that arrive while an fsync is running
// are appended together and share the next fsync: this is the server's one
// group commit (disk.Log does not batch). Nothing is reported Persisted
// before the fsync that covers it returned, which is what the engine's
// Ready obligations require before an entry is acknowledged.
//
// An entry's Data is the txn as the leader encoded it once (TxnHeader
// first); the log writes those bytes as they are.
type walWriter struct {
	wal       *disk.Log
	persisted chan int64
	failed    chan error
	log       *slog.Logger
	metrics   *admin.Metrics // fsync latency and batch size; nil records nothing

	mu      sync.Mutex
	pending []engine.Entry
	spare   []engine.Entry // the previous batch's array, reused for pending
	busy    bool           // a batch is being written
	closed  bool
	idle    chan struct{}
	wake    chan struct{}
	done    chan struct{}
}

func newWALWriter(wal *disk.Log, persisted chan int64, log *slog.Logger, metrics *admin.Metrics) *walWriter {
	w := &walWriter{
		wal: wal, persisted: persisted, log: log, metrics: metrics,
		failed: make(chan error, 1),
		wake:   make(chan struct{}, 1),
		idle:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	go w.run()
	return w
}

// submit queues entries for the log; it never blocks the event loop.
func (w *walWriter) submit(entries []engine.Entry) {
	w.mu.Lock()
	w.pending = append(w.pending, entries...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// flush waits until everything submitted so far is written and synced.
func (w *walWriter) flush() error {
	for {
		w.mu.Lock()
		idle := len(w.pending) == 0 && !w.busy
		w.mu.Unlock()
		if idle {
			return nil
		}
		select {
		case err := <-w.failed:
			w.failed <- err
			return err
		case <-w.idle:
		}
	}
}

// close stops the writer after it has written and synced what was queued.
func (w *walWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	<-w.done
}

func (w *walWriter) run() {
	defer close(w.done)
	var recs []disk.Record // reused: a batch costs no allocation here
	for {
		w.mu.Lock()
		batch := w.pending
		if len(batch) > 0 {
			w.pending, w.spare = w.spare, nil
		}
		w.busy = len(batch) > 0
		closed := w.closed
		w.mu.Unlock()
		if len(batch) == 0 {
			select {
			case w.idle <- struct{}{}:
			default:
			}
		}
		if len(batch) > 0 {
			recs = recs[:0]
			for _, e := range batch {
				recs = append(recs, disk.Record{Zxid: e.Zxid, Data: e.Data})
			}
			start := time.Now()
			if err := w.wal.Append(recs...); err != nil {
				w.fail(err)
				return
			}
			durable, err := w.wal.Sync()
			if err != nil {
				w.fail(err)
				return
			}
			if w.metrics != nil {
				w.metrics.Fsync.Observe(time.Since(start).Seconds())
				w.metrics.FsyncBatch.Observe(float64(len(recs)))
			}
			// The arrays go back for reuse without keeping the payloads
			// alive.
			clear(recs)
			clear(batch)
			w.mu.Lock()
			w.spare = batch[:0]
			w.mu.Unlock()
			w.report(durable)
			continue
		}
		if closed {
			return
		}
		<-w.wake
	}
}

func (w *walWriter) fail(err error) {
	w.log.Error("txn log write failed", "err", err)
	w.failed <- err
}

// report sends the newest durable zxid, replacing an unread older one so the
// writer never blocks on a busy loop.
func (w *walWriter) report(zxid int64) {
	for {
		select {
		case w.persisted <- zxid:
			return
		default:
		}
		select {
		case old := <-w.persisted:
			if old > zxid {
				zxid = old
			}
		default:
		}
	}
}
