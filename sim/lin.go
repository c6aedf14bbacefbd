package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/zabkeeper/zabkeeper/linearizability"
	"github.com/zabkeeper/zabkeeper/proto"
)

// linTimeout bounds Porcupine per seed; a timeout is reported as a warning
// in Report.Warnings, not as a violation.
var linTimeout = 20 * time.Second

// checkHistory converts what the clients saw into a linearizability.History
// and runs the checkers over it: Porcupine over writes, syncs and synced
// reads, and the read guarantees over every read.
func (sm *Sim) checkHistory() {
	h := sm.toHistory()
	sm.report.OpsChecked = len(h.Ops)
	for i, v := range linearizability.CheckReads(h) {
		if i == 10 {
			sm.report.Violations = append(sm.report.Violations, "reads: more violations follow")
			break
		}
		sm.report.Violations = append(sm.report.Violations, "reads: "+v.String())
	}
	res, err := linearizability.CheckLinearizable(h, linTimeout)
	switch {
	case err != nil:
		sm.report.Violations = append(sm.report.Violations, "history cannot be checked: "+err.Error())
	case res.Unknown:
		sm.report.LinTimedOut = true
		sm.report.Warnings = append(sm.report.Warnings, fmt.Sprintf("linearizability check timed out after %s (%d ops)", linTimeout, res.OpsChecked))
	case !res.Ok:
		msg := fmt.Sprintf("linearizability: the history of %d checked ops is not linearizable", res.OpsChecked)
		if path, err := sm.writeVisualization(h, res); err != nil {
			msg += fmt.Sprintf(" (visualization failed: %v)", err)
		} else {
			sm.report.Visualization = path
			msg += "; see " + path
		}
		sm.report.Violations = append(sm.report.Violations, msg)
	}
	for _, w := range res.Warnings {
		sm.report.Warnings = append(sm.report.Warnings, "linearizability: "+w)
	}
}

func (sm *Sim) writeVisualization(h linearizability.History, res linearizability.Result) (string, error) {
	dir := sm.opts.VisualizationDir
	if dir == "" {
		dir = os.Getenv("ZABKEEPER_SIM_DIR")
	}
	if dir == "" {
		dir = os.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("zabkeeper-sim-seed-%d.html", sm.opts.Seed))
	return path, linearizability.WriteVisualization(h, res, path)
}

// toHistory converts the recorded client operations (pings left out) and
// session expiries.
func (sm *Sim) toHistory() linearizability.History {
	var h linearizability.History
	last := map[int64]int{} // index of the previous op of each session
	for _, r := range sm.hist.ops {
		op, ok := convertOp(r)
		if !ok {
			continue
		}
		if i, seen := last[op.Session]; seen && op.Kind.IsRead() {
			p := &h.Ops[i]
			op.SyncedBefore = p.Kind == linearizability.Sync && p.Completed() && p.Err == 0
		}
		h.Add(op)
		last[op.Session] = len(h.Ops) - 1
	}
	for _, s := range sm.hist.sessions {
		if s.Expired {
			h.AddExpiry(s.Session, s.End*1000, linearizability.Unknown)
		}
	}
	return h
}

// convertOp maps one recorded request and reply to a history Op. Times go
// from µs to ns.
func convertOp(r *opRecord) (linearizability.Op, bool) {
	op := linearizability.Op{Session: r.Session, Call: r.Call * 1000, Return: linearizability.Unknown, Err: int32(r.Err), Zxid: r.Zxid}
	if r.Return >= 0 {
		op.Return = r.Return * 1000
	} else {
		op.Err, op.Zxid = 0, 0
	}
	ok := op.Return >= 0 && r.Err == proto.ErrOK
	switch req := r.Req.(type) {
	case *proto.CreateRequest:
		op.Kind, op.Path, op.Data, op.Mode = linearizability.Create, req.Path, req.Data, req.Flags
		switch resp := r.Resp.(type) {
		case *proto.CreateResponse:
			op.Name = resp.Path
		case *proto.Create2Response:
			op.Name, op.Mzxid, op.Czxid = resp.Path, resp.Stat.Mzxid, resp.Stat.Czxid
		}
	case *proto.SetDataRequest:
		op.Kind, op.Path, op.Data, op.Version = linearizability.SetData, req.Path, req.Data, req.Version
		if resp, isSet := r.Resp.(*proto.SetDataResponse); isSet && ok {
			op.StatVersion, op.Mzxid, op.Czxid = resp.Stat.Version, resp.Stat.Mzxid, resp.Stat.Czxid
		}
	case *proto.DeleteRequest:
		op.Kind, op.Path, op.Version = linearizability.Delete, req.Path, req.Version
	case *proto.GetDataRequest:
		op.Kind, op.Path = linearizability.GetData, req.Path
		if resp, isGet := r.Resp.(*proto.GetDataResponse); isGet && ok {
			op.RespData, op.StatVersion, op.Mzxid, op.Czxid = resp.Data, resp.Stat.Version, resp.Stat.Mzxid, resp.Stat.Czxid
		}
	case *proto.ExistsRequest:
		op.Kind, op.Path = linearizability.Exists, req.Path
		if resp, isEx := r.Resp.(*proto.ExistsResponse); isEx && ok {
			op.Exists, op.StatVersion, op.Mzxid, op.Czxid = true, resp.Stat.Version, resp.Stat.Mzxid, resp.Stat.Czxid
		}
	case *proto.GetChildrenRequest:
		op.Kind, op.Path = linearizability.GetChildren, req.Path
		if resp, isCh := r.Resp.(*proto.GetChildrenResponse); isCh && ok {
			op.Children = resp.Children
		}
	case *proto.GetChildren2Request:
		op.Kind, op.Path = linearizability.GetChildren, req.Path
		if resp, isCh := r.Resp.(*proto.GetChildren2Response); isCh && ok {
			op.Children = resp.Children
		}
	case *proto.SyncRequest:
		op.Kind, op.Path = linearizability.Sync, req.Path
	case *proto.MultiRequest:
		op.Kind = linearizability.Multi
		resp, _ := r.Resp.(*proto.MultiResponse)
		for i, m := range req.Ops {
			sub := convertSub(m)
			if resp != nil && i < len(resp.Results) && op.Return >= 0 {
				res := resp.Results[i]
				sub.Err = int32(res.Err)
				switch rr := res.Resp.(type) {
				case *proto.CreateResponse:
					sub.Name = rr.Path
				case *proto.Create2Response:
					sub.Name, sub.Mzxid, sub.Czxid = rr.Path, rr.Stat.Mzxid, rr.Stat.Czxid
				case *proto.SetDataResponse:
					sub.StatVersion, sub.Mzxid, sub.Czxid = rr.Stat.Version, rr.Stat.Mzxid, rr.Stat.Czxid
				case *proto.ErrorResponse:
					sub.Err = int32(rr.Err)
				}
			}
			op.Ops = append(op.Ops, sub)
		}
	default:
		if r.Op == proto.OpCloseSession {
			op.Kind = linearizability.CloseSession
			break
		}
		return op, false
	}
	return op, true
}

func convertSub(m proto.MultiOp) linearizability.Op {
	switch req := m.Req.(type) {
	case *proto.CreateRequest:
		return linearizability.Op{Kind: linearizability.Create, Path: req.Path, Data: req.Data, Mode: req.Flags}
	case *proto.SetDataRequest:
		return linearizability.Op{Kind: linearizability.SetData, Path: req.Path, Data: req.Data, Version: req.Version}
	case *proto.DeleteRequest:
		return linearizability.Op{Kind: linearizability.Delete, Path: req.Path, Version: req.Version}
	case *proto.CheckVersionRequest:
		return linearizability.Op{Kind: linearizability.Check, Path: req.Path, Version: req.Version}
	}
	return linearizability.Op{}
}
