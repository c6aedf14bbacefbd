package engine

import (
	"fmt"

	"github.com/zabkeeper/zabkeeper/engine/zab"
)

// ReadyHandler carries out the obligations of a Ready for one kind of
// caller: the server (files, sockets), the simulator (the real disk package
// on a crashable in-memory file system, a simulated network) and the test
// clusters (memory). Ready.Handle calls its methods in the order the
// obligations require, so that order lives in one place.
type ReadyHandler interface {
	// SaveHardState makes the epochs durable (obligation 1).
	SaveHardState(hs zab.HardState) error
	// TruncateLog durably discards every log entry with a zxid above
	// after (obligation 2, ZAB's TRUNC).
	TruncateLog(after int64) error
	// SaveSnapshot durably writes a snapshot received from the leader,
	// which the Node has already installed (obligation 3). A log tail
	// above the snapshot's zxid belongs to a history the ensemble did not
	// keep: the handler drops it first, so that a crash in between never
	// replays it on top.
	SaveSnapshot(snap *zab.SnapshotInstall) error
	// Send hands messages to the network (obligation 4).
	Send(msgs []zab.Message)
	// AppendLog appends entries to the log and arranges for the Node to
	// hear of them with Persisted once they are durable (obligation 5).
	AppendLog(entries []Entry) error
	// Deliver writes outputs to their connections, in order per
	// connection (obligation 6).
	Deliver(outs []Output)
}

// ConfigHandler is a ReadyHandler that follows membership changes
// (Ready.Config): it records the configuration durably (ZooKeeper's
// zoo.cfg.dynamic.<version>) and links to its members before the batch's
// messages go out.
type ConfigHandler interface {
	ActivateConfig(c ConfigChange) error
}

// Handle carries out the batch's obligations 1 to 6 on h, in order, and
// stops at the first error: nothing that depends on a failed write may go
// out. The caller calls Advance next (obligation 7), with no input to the
// Node in between.
func (rd *Ready) Handle(h ReadyHandler) error {
	if rd.HardState != nil {
		if err := h.SaveHardState(*rd.HardState); err != nil {
			return fmt.Errorf("engine: persist epochs accepted=%d current=%d: %w", rd.HardState.AcceptedEpoch, rd.HardState.CurrentEpoch, err)
		}
	}
	if rd.Truncate != nil {
		if err := h.TruncateLog(*rd.Truncate); err != nil {
			return fmt.Errorf("engine: truncate log after 0x%x: %w", *rd.Truncate, err)
		}
	}
	if rd.Snapshot != nil {
		if err := h.SaveSnapshot(rd.Snapshot); err != nil {
			return fmt.Errorf("engine: persist snapshot 0x%x: %w", rd.Snapshot.Zxid, err)
		}
	}
	if rd.Config != nil {
		if ch, ok := h.(ConfigHandler); ok {
			if err := ch.ActivateConfig(*rd.Config); err != nil {
				return fmt.Errorf("engine: activate configuration 0x%x: %w", rd.Config.Version, err)
			}
		}
	}
	if len(rd.Messages) > 0 {
		h.Send(rd.Messages)
	}
	if len(rd.Entries) > 0 {
		if err := h.AppendLog(rd.Entries); err != nil {
			return fmt.Errorf("engine: append log 0x%x..0x%x: %w", rd.Entries[0].Zxid, rd.Entries[len(rd.Entries)-1].Zxid, err)
		}
	}
	if len(rd.Outputs) > 0 {
		h.Deliver(rd.Outputs)
	}
	return nil
}
