package load

import (
	"bytes"
	"fmt"

	"github.com/zabkeeper/zabkeeper/linearizability"
)

// write is one change a write may have made to a path, for
// AckedWritesLost: a top-level write or a sub-operation of a multi, with
// the times and outcome of the request that carried it.
type write struct {
	linearizability.Op
	call, ret int64 // ret is linearizability.Unknown if the outcome is
	acked     bool
}

// pathWrites lists the writes to path that may have taken effect: the
// successful ones and those of unknown outcome.
func pathWrites(h linearizability.History, path string) []write {
	var out []write
	for i := range h.Ops {
		op := &h.Ops[i]
		known := op.Completed()
		subs := []linearizability.Op{*op}
		if op.Kind == linearizability.Multi {
			subs = op.Ops
			for _, s := range subs {
				if known && s.Err != linearizability.ErrOK {
					subs = nil // a failed multi changes nothing
					break
				}
			}
		} else if known && op.Err != linearizability.ErrOK {
			continue
		}
		for _, s := range subs {
			if s.Path != path {
				continue
			}
			switch s.Kind {
			case linearizability.Create, linearizability.SetData, linearizability.Delete:
				s.Session = op.Session
				ret := op.Return
				if !known {
					ret = linearizability.Unknown
				}
				out = append(out, write{Op: s, call: op.Call, ret: ret, acked: known})
			}
		}
	}
	return out
}

// LostWrite is a path whose final state no write that may be last
// explains.
type LostWrite struct {
	Desc string
	// At is when the newest acknowledged write that may be last was
	// acknowledged (the final read's call if there is none): the state was
	// right until then at the earliest.
	At int64
}

func (l LostWrite) String() string { return l.Desc }

// AckedWritesLost compares each path's final synced read with the writes
// that may have left the final state: every successful or unknown write
// (multis included) not definitely followed by an acknowledged successful
// write on the same path (one that was called after it returned). Data
// payloads are unique, so a final value names its write. It returns a
// description per path whose final state no such write explains.
func AckedWritesLost(h linearizability.History, paths []string) []LostWrite {
	var out []LostWrite
	expired := map[int64]bool{}
	for _, op := range h.Ops {
		if op.Kind == linearizability.CloseSession {
			expired[op.Session] = true
		}
	}
	for _, path := range paths {
		writes := pathWrites(h, path)
		var final *linearizability.Op
		for i := range h.Ops {
			op := &h.Ops[i]
			if op.Path == path && op.Kind == linearizability.GetData && op.SyncedBefore && op.Completed() &&
				(final == nil || op.Call > final.Call) {
				final = op
			}
		}
		if final == nil {
			out = append(out, LostWrite{Desc: path + ": no final read"})
			continue
		}
		superseded := func(w write) bool {
			if !w.acked {
				return false
			}
			for _, o := range writes {
				if o.acked && o.call > w.ret {
					return true
				}
			}
			return false
		}
		explained := len(writes) == 0 && final.Err == linearizability.ErrNoNode
		lastAck := final.Call
		acked := false
		for _, w := range writes {
			if superseded(w) {
				continue
			}
			if w.acked && (!acked || w.ret > lastAck) {
				lastAck, acked = w.ret, true
			}
			switch final.Err {
			case linearizability.ErrNoNode:
				explained = explained || w.Kind == linearizability.Delete ||
					(w.Kind == linearizability.Create && w.Mode == linearizability.ModeEphemeral && expired[w.Session])
			case linearizability.ErrOK:
				explained = explained || (w.Kind != linearizability.Delete && bytes.Equal(w.Data, final.RespData))
			}
		}
		if !explained {
			out = append(out, LostWrite{Desc: fmt.Sprintf("%s: final read %s matches no write that may be last", path, final.String()), At: lastAck})
		}
	}
	return out
}
