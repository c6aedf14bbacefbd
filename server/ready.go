package server

import (
	"fmt"
	"io"
	"time"

	"github.com/zabkeeper/zabkeeper/engine"
	"github.com/zabkeeper/zabkeeper/engine/zab"
)

// readyHandler carries out the Node's Ready obligations on this server;
// engine.Ready.Handle calls it in the order they must be met. The durable
// state of a sync (epochs, truncation of a divergent tail, a snapshot from
// the leader) is rare, so it is written on the loop once the log writer has
// caught up, which keeps it in order with the entries of earlier batches.
// Entries go to the log writer, which fsyncs them and reports Persisted.
type readyHandler struct {
	s        *Server
	w        *walWriter
	commits  *commitTimer
	arrivals map[engine.ConnID][]arrival
}

var _ engine.ReadyHandler = readyHandler{}

func (h readyHandler) flush() error {
	if err := h.w.flush(); err != nil {
		return fmt.Errorf("server: txn log failed: %w", err)
	}
	return nil
}

// SaveHardState writes the epoch files.
func (h readyHandler) SaveHardState(hs zab.HardState) error {
	if err := h.flush(); err != nil {
		return err
	}
	return h.s.writeEpochs(hs)
}

// TruncateLog cuts a divergent tail off the txn log (ZAB's TRUNC).
func (h readyHandler) TruncateLog(after int64) error {
	if err := h.flush(); err != nil {
		return err
	}
	h.commits.reset()
	if err := h.s.wal.TruncateAfter(after); err != nil {
		return fmt.Errorf("server: truncate txn log after 0x%x: %w", after, err)
	}
	return nil
}

// SaveSnapshot writes the leader's snapshot (ZAB's SNAP) as one of ours.
func (h readyHandler) SaveSnapshot(snap *zab.SnapshotInstall) error {
	if err := h.flush(); err != nil {
		return err
	}
	h.commits.reset()
	// The leader's state replaces ours: a log tail beyond it is from a
	// history the ensemble did not keep. Drop it before the snapshot
	// lands, so a crash in between never replays it on top.
	if z := snap.Zxid; h.s.wal.LastZxid() > z {
		if err := h.s.wal.TruncateAfter(z); err != nil {
			return fmt.Errorf("server: truncate txn log after snapshot 0x%x: %w", z, err)
		}
	}
	data := snap.Data
	return h.s.writeSnapshot(snap.Zxid, func(out io.Writer) error {
		_, err := data.WriteTo(out)
		return err
	})
}

// Send sends messages to the peers.
func (h readyHandler) Send(msgs []zab.Message) {
	h.s.noteConfigVersions()
	h.s.sendPeers(msgs)
	h.s.notePeerRole()
	h.s.countSyncs(msgs)
	// The transports keep copies of the messages, never the array: the
	// engine may write its next messages into it instead of growing a new
	// one each Ready (2.5% of a leader's CPU under writes).
	h.s.node.ReuseMessages(msgs)
}

// AppendLog hands entries to the log writer.
func (h readyHandler) AppendLog(entries []engine.Entry) error {
	now := time.Now()
	for _, e := range entries {
		h.commits.proposed(e.Zxid, now)
	}
	h.s.txnsLogged.Add(int64(len(entries)))
	h.w.submit(entries)
	return nil
}

// Deliver queues outputs on their connections.
func (h readyHandler) Deliver(outs []engine.Output) { h.s.deliver(outs, h.arrivals) }
