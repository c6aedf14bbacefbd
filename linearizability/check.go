package linearizability

import (
	"fmt"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// outcomeClass says how the checker treats an operation's recorded outcome.
type outcomeClass int

const (
	// classChecked: the reply must be explained by the model.
	classChecked outcomeClass = iota
	// classUnknown: no reply; the operation may have taken effect (with
	// whatever result the model gives) at any time after its Call, or never
	// (it is pending forever, so it can always be linearized last).
	classUnknown
	// classRejected: the server rejected the request with a code the model
	// does not produce (SessionExpired, NoAuth, ThrottledOp, ...): no effect,
	// nothing to check.
	classRejected
)

// modelWriteCodes are the codes the model produces for writes.
var modelWriteCodes = map[int32]bool{
	ErrOK: true, ErrBadArguments: true, ErrNoNode: true, ErrBadVersion: true,
	ErrNoChildrenForEphemeral: true, ErrNodeExists: true, ErrNotEmpty: true,
}

func classify(op *Op) outcomeClass {
	if !op.Completed() {
		return classUnknown
	}
	switch op.Kind {
	case Sync:
		return classChecked
	case CloseSession, Multi:
		if op.Err != ErrOK {
			return classRejected
		}
		return classChecked
	case GetData, Exists, GetChildren:
		if op.Err == ErrOK || op.Err == ErrNoNode || op.Err == ErrBadArguments {
			return classChecked
		}
		return classRejected
	}
	if modelWriteCodes[op.Err] {
		return classChecked
	}
	return classRejected
}

// entry is one operation handed to Porcupine (as both Input and Output).
type entry struct {
	idx    int // index in History.Ops
	op     Op  // the operation; a synced read's Call is its sync's Call
	class  outcomeClass
	fp     []string // footprint, see partition.go
	synced bool     // read widened to start at its sync's Call
}

// Result is the outcome of CheckLinearizable.
type Result struct {
	// Ok: every partition is linearizable.
	Ok bool
	// Unknown: the check timed out before finding a violation (Ok is false).
	Unknown bool
	// Partitions is the number of independent partitions checked.
	Partitions int
	// OpsChecked is the number of operations given to Porcupine.
	OpsChecked int
	// Excluded is the number of operations left out: plain reads (checked
	// by CheckReads instead), reads whose outcome is unknown, and synced reads
	// whose sync could not be found (those are also listed in Warnings).
	Excluded int
	// Warnings lists oddities of the history that did not stop the check.
	Warnings []string
	// Info is Porcupine's linearization data, used by WriteVisualization.
	Info porcupine.LinearizationInfo
}

// String summarises the result on one line.
func (r Result) String() string {
	verdict := "linearizable"
	switch {
	case r.Unknown:
		verdict = "unknown (timed out)"
	case !r.Ok:
		verdict = "NOT linearizable"
	}
	return fmt.Sprintf("%s: %d ops in %d partitions, %d excluded", verdict, r.OpsChecked, r.Partitions, r.Excluded)
}

// validate rejects histories the model cannot interpret.
func validate(h *History) error {
	for i := range h.Ops {
		op := &h.Ops[i]
		if op.Return >= 0 && op.Return < op.Call {
			return fmt.Errorf("linearizability: op %d (%s) returns at %d before its call at %d", i, op.Kind, op.Return, op.Call)
		}
		if op.Return < 0 && op.Return != Unknown {
			return fmt.Errorf("linearizability: op %d has Return %d; use Unknown (-1) for unknown outcomes", i, op.Return)
		}
		if err := validateKind(op, false); err != nil {
			return fmt.Errorf("linearizability: op %d: %w", i, err)
		}
	}
	return nil
}

func validateKind(op *Op, inMulti bool) error {
	switch op.Kind {
	case Create:
		if op.Mode < ModePersistent || op.Mode > ModeEphemeralSequential {
			return fmt.Errorf("create mode %d is not modelled (only 0..3)", op.Mode)
		}
	case Delete, SetData:
	case Check:
		if !inMulti {
			return fmt.Errorf("check is only valid inside a multi")
		}
	case Multi:
		if inMulti {
			return fmt.Errorf("nested multi")
		}
		for i := range op.Ops {
			if err := validateKind(&op.Ops[i], true); err != nil {
				return fmt.Errorf("multi sub-op %d: %w", i, err)
			}
		}
	case GetData, Exists, GetChildren, Sync, CloseSession:
		if inMulti {
			return fmt.Errorf("%s inside a multi", op.Kind)
		}
	default:
		return fmt.Errorf("unknown kind %d", int(op.Kind))
	}
	return nil
}

// sessionOrder returns, per session, the indices of its operations in issue
// order (Call, then position in the history).
func sessionOrder(h *History) map[int64][]int {
	order := map[int64][]int{}
	for i := range h.Ops {
		order[h.Ops[i].Session] = append(order[h.Ops[i].Session], i)
	}
	for _, idx := range order {
		sort.SliceStable(idx, func(a, b int) bool { return h.Ops[idx[a]].Call < h.Ops[idx[b]].Call })
	}
	return order
}

// prepared is a history turned into Porcupine operations.
type prepared struct {
	ops      []porcupine.Operation
	excluded int
	warnings []string
}

// prepare selects the operations to check, widens synced reads, computes
// footprints and builds Porcupine operations.
func prepare(h *History) (*prepared, error) {
	if err := validate(h); err != nil {
		return nil, err
	}
	p := &prepared{}
	// The previous operation of each op in its session, for sync pairing.
	prev := make([]int, len(h.Ops))
	for i := range prev {
		prev[i] = -1
	}
	clients := map[int64]int{}
	for _, idx := range sessionOrder(h) {
		for k := 1; k < len(idx); k++ {
			prev[idx[k]] = idx[k-1]
		}
	}
	var maxT int64
	for i := range h.Ops {
		if h.Ops[i].Call > maxT {
			maxT = h.Ops[i].Call
		}
		if h.Ops[i].Return > maxT {
			maxT = h.Ops[i].Return
		}
	}
	var entries []*entry
	for i := range h.Ops {
		op := h.Ops[i]
		e := &entry{idx: i, op: op, class: classify(&op)}
		if op.Kind.IsRead() {
			if e.class == classUnknown || !op.SyncedBefore {
				p.excluded++
				continue
			}
			j := prev[i]
			if j < 0 || h.Ops[j].Kind != Sync || !h.Ops[j].Completed() {
				p.excluded++
				p.warnings = append(p.warnings, fmt.Sprintf("op %d (%s) is marked SyncedBefore but its session's previous op is not a completed sync; checked as a plain read only", i, op.String()))
				continue
			}
			e.op.Call = h.Ops[j].Call
			e.synced = true
		}
		entries = append(entries, e)
	}
	assignFootprints(entries)
	// Stable client ids for the visualization, by first appearance.
	for _, e := range entries {
		if _, ok := clients[e.op.Session]; !ok {
			clients[e.op.Session] = len(clients)
		}
	}
	for _, e := range entries {
		ret := e.op.Return
		if e.class == classUnknown {
			ret = maxT + 1
		}
		p.ops = append(p.ops, porcupine.Operation{
			ClientId: clients[e.op.Session],
			Input:    e,
			Call:     e.op.Call,
			Output:   e,
			Return:   ret,
			// The entry, described only when a visualization asks
			// (DescribeOperationMetadata): formatting it for every op
			// was most of the checker's fmt work.
			Metadata: e,
		})
	}
	return p, nil
}

// step is the Porcupine step function over *State and *entry.
func step(state, input, _ interface{}) (bool, interface{}) {
	st := state.(*State)
	e := input.(*entry)
	op := &e.op
	switch e.class {
	case classRejected:
		return true, st
	case classUnknown:
		// May take effect: whatever the model says happens. "Never took
		// effect" is covered by linearizing the op after everything else.
		if op.Kind.IsWrite() {
			_, next := applyWrite(st, op.Session, op)
			return true, next
		}
		return true, st
	}
	switch op.Kind {
	case Sync:
		return true, st
	case GetData, Exists, GetChildren:
		return explains(op, observe(st, op)), st
	case Multi:
		if f := firstFailure(op.Ops); f >= 0 && !modelWriteCodes[op.Ops[f].Err] {
			return stepOpaqueMulti(st, op, f), st
		}
	}
	r, next := applyWrite(st, op.Session, op)
	if !explains(op, r) {
		return false, st
	}
	return true, next
}

func firstFailure(ops []Op) int {
	for i := range ops {
		if ops[i].Err != ErrOK {
			return i
		}
	}
	return -1
}

// stepOpaqueMulti checks a multi whose sub-op f failed with a code the model
// does not produce (e.g. NoAuth): the ops before it must succeed in the model,
// the ops after it must report RuntimeInconsistency, and nothing changes.
func stepOpaqueMulti(st *State, op *Op, f int) bool {
	for i := f + 1; i < len(op.Ops); i++ {
		if op.Ops[i].Err != ErrRuntimeInconsistency {
			return false
		}
	}
	prefix := Op{Kind: Multi, Session: op.Session, Ops: op.Ops[:f]}
	r, _ := applyWrite(st, op.Session, &prefix)
	if r.err != ErrOK {
		return false
	}
	for i := 0; i < f; i++ {
		if r.sub[i].err != ErrOK {
			return false
		}
	}
	return true
}

// newModel returns the Porcupine model of the ZooKeeper tree.
func newModel() porcupine.Model {
	return porcupine.Model{
		Partition: partitionOperations,
		Init:      func() interface{} { return initialState() },
		Step:      step,
		Equal: func(a, b interface{}) bool {
			return a.(*State).Equal(b.(*State))
		},
		Hash: func(s interface{}) uint64 { return s.(*State).hash },
		DescribeOperation: func(input, _ interface{}) string {
			return describeEntry(input.(*entry))
		},
		DescribeState: func(s interface{}) string { return s.(*State).String() },
		DescribeOperationMetadata: func(m interface{}) string {
			switch m := m.(type) {
			case *entry:
				return fmt.Sprintf("history[%d] session %#x zxid %#x", m.idx, m.op.Session, m.op.Zxid)
			case string:
				return m
			}
			return ""
		},
	}
}

// CheckLinearizable checks with Porcupine that the writes, syncs and synced
// reads of h are linearizable against the ZooKeeper tree model. A timeout of
// 0 means no limit; when it expires the result is Unknown. An error means the
// history cannot be interpreted (unknown kinds, unmodelled create modes,
// Return before Call).
func CheckLinearizable(h History, timeout time.Duration) (Result, error) {
	p, err := prepare(&h)
	if err != nil {
		return Result{}, err
	}
	model := newModel()
	res := Result{OpsChecked: len(p.ops), Excluded: p.excluded, Warnings: p.warnings}
	if len(p.ops) > 0 {
		res.Partitions = len(partitionOperations(p.ops))
	}
	verdict, info := porcupine.CheckOperationsVerbose(model, p.ops, timeout)
	res.Ok = verdict == porcupine.Ok
	res.Unknown = verdict == porcupine.Unknown
	res.Info = info
	return res, nil
}
