package linearizability

import (
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// The generator runs random operations against the model itself, one at a
// time, in "linearization slots" T_i = 1000*(i+1), and records what the model
// answered. Writes get consecutive zxids (failed writes too, as ZooKeeper's
// error transactions do); a plain read is answered from a snapshot at a zxid
// between its session's last seen zxid and the newest; a synced read from the
// newest state. The resulting history is linearizable and read-consistent
// by construction, whatever intervals around the slots we give the ops.

type genConfig struct {
	concurrent bool // random overlapping intervals around the slots
	unknowns   bool // some writes lose their reply (applied or not)
}

type genOp struct {
	op   Op
	slot int
	pair int // 0: single op; 1: the sync of a sync+read pair; 2: its read
}

type generated struct {
	h History
	// syncedReads, writes and plainReads index h.Ops.
	syncedReads, writes, plainReads []int
}

var (
	genPaths     = []string{"/a", "/b", "/a/x", "/a/y", "/q", "/q/x", "/b/e"}
	genSeqPaths  = []string{"/q/n-", "/a/s-", "/q/", "/n-"}
	genData      = []string{"", "x", "y", "zz"}
	genReadPaths = append(append([]string{}, genPaths...), "/", "/q/n-0000000000", "/q/n-0000000001", "/q/0000000002")
)

func drawWrite(t *rapid.T, label string, inMulti bool) Op {
	kinds := []OpKind{Create, Create, Delete, SetData}
	if inMulti {
		kinds = append(kinds, Check)
	}
	op := Op{Kind: rapid.SampledFrom(kinds).Draw(t, label+"kind")}
	op.Version = int32(rapid.IntRange(-1, 2).Draw(t, label+"version"))
	switch op.Kind {
	case Create:
		op.Mode = int32(rapid.IntRange(0, 3).Draw(t, label+"mode"))
		if isSequentialMode(op.Mode) {
			op.Path = rapid.SampledFrom(genSeqPaths).Draw(t, label+"path")
		} else {
			op.Path = rapid.SampledFrom(genPaths).Draw(t, label+"path")
		}
		op.Data = []byte(rapid.SampledFrom(genData).Draw(t, label+"data"))
	case SetData:
		op.Path = rapid.SampledFrom(genPaths).Draw(t, label+"path")
		op.Data = []byte(rapid.SampledFrom(genData).Draw(t, label+"data"))
	default:
		op.Path = rapid.SampledFrom(genPaths).Draw(t, label+"path")
	}
	return op
}

// fillWrite records the model's reply r into op.
func fillWrite(op *Op, r result) {
	op.Err = r.err
	switch op.Kind {
	case Create:
		op.Name = r.name
	case SetData:
		op.StatVersion = r.version
	case Multi:
		for i := range op.Ops {
			fillWrite(&op.Ops[i], r.sub[i])
		}
	}
}

// fillRead records the model's answer r into a read op.
func fillRead(t *rapid.T, op *Op, r result) {
	op.Err = r.err
	switch op.Kind {
	case GetData:
		if r.err == ErrOK {
			op.RespData, op.StatVersion = []byte(r.data), r.version
		}
	case Exists:
		op.Exists = r.err == ErrOK
		op.StatVersion = r.version
		if !op.Exists && rapid.Bool().Draw(t, "existsStyle") {
			op.Err = ErrOK // go-zk style: (false, nil) rather than NoNode
		}
	case GetChildren:
		for i := len(r.children) - 1; i >= 0; i-- { // reverse: order must not matter
			op.Children = append(op.Children, r.children[i])
		}
	}
}

// drawReadPath prefers nodes that exist now, so reads see data.
func drawReadPath(t *rapid.T, st *State) string {
	if rapid.Bool().Draw(t, "existing") {
		paths := st.paths()
		return rapid.SampledFrom(sortedCopy(paths)).Draw(t, "rpath")
	}
	return rapid.SampledFrom(genReadPaths).Draw(t, "rpath")
}

func genHistory(t *rapid.T, cfg genConfig) generated {
	st := initialState()
	zxid := int64(1)
	snaps := map[int64]*State{1: st}
	active := []int64{1, 2, 3}
	nextSession := int64(4)
	lastSeen := map[int64]int64{}
	var ops []genOp
	n := rapid.IntRange(1, 60).Draw(t, "n")
	for slot := 0; slot < n; slot++ {
		si := rapid.IntRange(0, len(active)-1).Draw(t, "session")
		s := active[si]
		choice := rapid.IntRange(0, 19).Draw(t, "choice")
		switch {
		case choice < 9 || choice == 19 && slot%2 == 0: // single write or multi
			var op Op
			if choice < 7 {
				op = drawWrite(t, "w", false)
			} else {
				op = Op{Kind: Multi}
				for k := rapid.IntRange(1, 3).Draw(t, "nsub"); k > 0; k-- {
					op.Ops = append(op.Ops, drawWrite(t, "sub", true))
				}
			}
			op.Session = s
			if cfg.unknowns && rapid.IntRange(0, 7).Draw(t, "lose") == 0 {
				if rapid.Bool().Draw(t, "applied") {
					_, st = applyWrite(st, s, &op)
					zxid++
					snaps[zxid] = st
				}
				op.Return = Unknown
				if rapid.Bool().Draw(t, "asConnLoss") {
					op.Err = ErrConnectionLoss
					op.Return = 0 // set by the timing pass
				}
				ops = append(ops, genOp{op: op, slot: slot})
				continue
			}
			r, next := applyWrite(st, s, &op)
			st = next
			zxid++
			snaps[zxid] = st
			fillWrite(&op, r)
			op.Zxid = zxid
			if op.Err == ErrOK && rapid.Bool().Draw(t, "stat") {
				switch op.Kind {
				case SetData:
					op.Mzxid = zxid
				case Create:
					op.Czxid, op.Mzxid = zxid, zxid
				}
			}
			lastSeen[s] = zxid
			ops = append(ops, genOp{op: op, slot: slot})
		case choice < 14: // sync + read
			read := Op{Session: s, Kind: rapid.SampledFrom([]OpKind{GetData, Exists, GetChildren}).Draw(t, "rkind"),
				Path: drawReadPath(t, st), SyncedBefore: true}
			fillRead(t, &read, observe(st, &read))
			read.Zxid = zxid
			lastSeen[s] = zxid
			ops = append(ops,
				genOp{op: Op{Session: s, Kind: Sync, Path: read.Path, Zxid: zxid}, slot: slot, pair: 1},
				genOp{op: read, slot: slot, pair: 2})
		case choice < 19: // plain, possibly stale read
			at := rapid.Int64Range(max(lastSeen[s], 1), zxid).Draw(t, "readZxid")
			read := Op{Session: s, Kind: rapid.SampledFrom([]OpKind{GetData, Exists, GetChildren}).Draw(t, "rkind"),
				Path: drawReadPath(t, snaps[at])}
			fillRead(t, &read, observe(snaps[at], &read))
			read.Zxid = at
			lastSeen[s] = at
			ops = append(ops, genOp{op: read, slot: slot})
		default: // close the session; a fresh one takes its place
			op := Op{Session: s, Kind: CloseSession}
			_, st = applyWrite(st, s, &op)
			zxid++
			snaps[zxid] = st
			op.Zxid = zxid
			ops = append(ops, genOp{op: op, slot: slot})
			active[si] = nextSession
			nextSession++
		}
	}
	assignTimes(t, ops, cfg.concurrent)
	var g generated
	for i, o := range ops {
		g.h.Add(o.op)
		switch {
		case o.op.Kind.IsRead() && o.op.SyncedBefore:
			g.syncedReads = append(g.syncedReads, i)
		case o.op.Kind.IsRead():
			g.plainReads = append(g.plainReads, i)
		case o.op.Kind.IsWrite() && o.op.Kind != CloseSession && o.op.Completed():
			g.writes = append(g.writes, i)
		}
	}
	return g
}

// assignTimes gives every op an interval containing its slot's time and not
// overlapping its session's neighbouring ops.
func assignTimes(t *rapid.T, ops []genOp, concurrent bool) {
	slotTime := func(slot int) int64 { return int64(1000 * (slot + 1)) }
	// Neighbouring slots of the same session.
	prevSlot, nextSlot := map[int]int{}, map[int]int{}
	last := map[int64]int{}
	for _, o := range ops {
		if o.pair == 2 {
			continue
		}
		if p, ok := last[o.op.Session]; ok {
			prevSlot[o.slot], nextSlot[p] = p, o.slot
		}
		last[o.op.Session] = o.slot
	}
	for i := 0; i < len(ops); i++ {
		o := &ops[i]
		T := slotTime(o.slot)
		call, ret := T-5, T+5
		if concurrent {
			lo, hi := T-900, T+900
			if p, ok := prevSlot[o.slot]; ok {
				lo = (slotTime(p)+T)/2 + 1
			}
			if n, ok := nextSlot[o.slot]; ok {
				hi = (T+slotTime(n))/2 - 1
			}
			call = rapid.Int64Range(lo, T-1).Draw(t, "call")
			ret = rapid.Int64Range(T+1, hi).Draw(t, "ret")
		}
		if o.pair == 1 {
			m := rapid.Int64Range(call, ret-1).Draw(t, "syncReturn")
			o.op.Call, o.op.Return = call, m
			ops[i+1].op.Call, ops[i+1].op.Return = m+1, ret
			i++
			continue
		}
		o.op.Call = call
		if o.op.Return != Unknown {
			o.op.Return = ret
		}
	}
}

func checkGenerated(t *rapid.T, g generated) {
	res, err := CheckLinearizable(g.h, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Ok {
		for _, op := range g.h.Ops {
			t.Log(op.String())
		}
		t.Fatalf("generated history rejected: %v", res)
	}
	if res.Excluded != len(g.plainReads) || len(res.Warnings) != 0 {
		t.Fatalf("excluded %d, want %d (warnings %v)", res.Excluded, len(g.plainReads), res.Warnings)
	}
	if v := CheckReads(g.h); len(v) != 0 {
		for _, op := range g.h.Ops {
			t.Log(op.String())
		}
		t.Fatalf("generated history has read violations: %v", v)
	}
}

func TestPropertyModelHistoriesPass(t *testing.T) {
	for _, cfg := range []genConfig{{}, {concurrent: true}, {unknowns: true}, {concurrent: true, unknowns: true}} {
		t.Run(fmt.Sprintf("concurrent=%v,unknowns=%v", cfg.concurrent, cfg.unknowns), func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) { checkGenerated(t, genHistory(t, cfg)) })
		})
	}
}

// mutate changes one observable field of op's outcome.
func mutate(t *rapid.T, op *Op) {
	switch op.Kind {
	case Create:
		switch {
		case op.Err != ErrOK:
			op.Err, op.Name = ErrOK, ""
		case op.Name != "" && rapid.Bool().Draw(t, "mutName"):
			op.Name += "0"
		default:
			op.Err = ErrNodeExists
		}
	case Delete:
		if op.Err == ErrOK {
			op.Err = ErrBadVersion
		} else {
			op.Err = ErrOK
		}
	case SetData:
		switch {
		case op.Err != ErrOK:
			op.Err = ErrOK
		case rapid.Bool().Draw(t, "mutVersion"):
			op.StatVersion++
		default:
			op.Err = ErrNoNode
		}
	case Multi:
		j := rapid.IntRange(0, len(op.Ops)-1).Draw(t, "mutSub")
		if op.Ops[j].Err == ErrOK {
			op.Ops[j].Err = ErrNoNode
		} else {
			op.Ops[j].Err = ErrOK
		}
	case GetData:
		if op.Err == ErrOK {
			op.RespData = append(append([]byte{}, op.RespData...), '!')
		} else {
			op.Err = ErrOK
		}
	case Exists:
		if op.Err == ErrOK && op.Exists {
			op.Err, op.Exists = ErrNoNode, false
		} else {
			op.Err, op.Exists = ErrOK, true
		}
	case GetChildren:
		if op.Err == ErrOK {
			op.Children = append(append([]string{}, op.Children...), "zz")
		} else {
			op.Err = ErrOK
		}
	}
}

func TestPropertyMutatedHistoriesFail(t *testing.T) {
	for _, concurrent := range []bool{false, true} {
		t.Run(fmt.Sprintf("concurrent=%v", concurrent), func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				g := genHistory(t, genConfig{concurrent: concurrent})
				targets := append(append([]int{}, g.writes...), g.syncedReads...)
				if len(targets) == 0 {
					t.Skip("nothing to mutate")
				}
				i := rapid.SampledFrom(targets).Draw(t, "target")
				before := g.h.Ops[i].String()
				mutate(t, &g.h.Ops[i])
				res, err := CheckLinearizable(g.h, 0)
				if err != nil {
					t.Fatal(err)
				}
				// In a sequential history the linearization is unique, so any
				// change to a compared outcome must be caught. With overlapping
				// intervals another order may explain it; only require that
				// the checker does not crash then.
				if !concurrent && res.Ok {
					for _, op := range g.h.Ops {
						t.Log(op.String())
					}
					t.Fatalf("mutation of history[%d] %s -> %s not detected", i, before, g.h.Ops[i].String())
				}
			})
		})
	}
}

func TestPropertyMutatedPlainReadsFail(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		g := genHistory(t, genConfig{concurrent: rapid.Bool().Draw(t, "concurrent")})
		if len(g.plainReads) == 0 {
			t.Skip("no plain reads")
		}
		i := rapid.SampledFrom(g.plainReads).Draw(t, "target")
		before := g.h.Ops[i].String()
		mutate(t, &g.h.Ops[i])
		if v := CheckReads(g.h); len(v) == 0 {
			for _, op := range g.h.Ops {
				t.Log(op.String())
			}
			t.Fatalf("mutation of plain read history[%d] %s -> %s not detected", i, before, g.h.Ops[i].String())
		}
		// Plain reads never make the linearizability check fail.
		if res, err := CheckLinearizable(g.h, 0); err != nil || !res.Ok {
			t.Fatalf("plain read mutation affected CheckLinearizable: %v %v", res, err)
		}
	})
}

// TestPropertyWriteIndex checks that the index CheckReads asks lists, for
// every read, exactly the writes that affect it (write.affects), each once.
func TestPropertyWriteIndex(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		g := genHistory(t, genConfig{concurrent: true, unknowns: true})
		writes := collectWrites(&g.h)
		x := indexWrites(writes)
		for i := range g.h.Ops {
			r := &g.h.Ops[i]
			if !r.Kind.IsRead() {
				continue
			}
			var want []int
			for _, w := range writes {
				if w.affects(r) {
					want = append(want, w.idx)
				}
			}
			var got []int
			for _, w := range x.affecting(r, nil) {
				got = append(got, w.idx)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("read %s: index lists writes %v, affects says %v", r.String(), got, want)
			}
		}
	})
}
