package linearizability

import (
	"sort"

	"github.com/anishathalye/porcupine"
)

// Partitioning. A history is linearizable iff each group of operations that
// share no state is, so we split the checked operations into the connected
// components of "touches the same path" (union-find over paths) and let
// Porcupine check the components independently, in parallel.
//
// The footprint of an operation is every path whose model state it reads or
// writes:
//
//   - create P: P, plus parent(P) when the parent is structural (below);
//     a sequential create under Q: Q and the returned name; if the name is
//     unknown (outcome unknown or not recorded), every path of the history
//     whose parent is Q, since it may have created any of them;
//   - delete P: P, plus parent(P) when structural;
//   - setData, check, getData, exists, getChildren, sync P: P;
//   - multi: the union of its sub-operations' footprints;
//   - closeSession(s): the footprints of all of s's ephemeral creates, and of
//     all of s's writes that may be linearized after the close (outcome
//     unknown, or Return >= the close's Call), because the model rejects
//     writes of a closed session.
//
// A path is structural when its existence, its child list or its child
// counter (the sequential suffix) can change or be observed: it is created or
// deleted, listed by getChildren, or the parent of a sequential create. A
// create or delete of P only affects its parent through exactly those
// attributes, so when the parent is not structural it never changes in any
// partition (it exists throughout iff it is one of the initial nodes) and the
// create or delete does not need to join the parent's component. This is what
// keeps "create /a" and "create /b" apart although both are children of "/".
// getChildren P only needs P: every operation that changes P's child list
// touches P.

// assignFootprints fills in the footprint of every checked entry.
func assignFootprints(entries []*entry) {
	structural := map[string]bool{}
	unknownSeqParents := map[string]bool{}
	allPaths := map[string]bool{}

	var visit func(op *Op, nameKnown bool)
	visit = func(op *Op, nameKnown bool) {
		if op.Path != "" {
			allPaths[op.Path] = true
		}
		switch op.Kind {
		case Create:
			if isSequentialMode(op.Mode) {
				structural[parentOf(op.Path)] = true
				if nameKnown && op.Err == ErrOK && op.Name != "" {
					structural[op.Name] = true
					allPaths[op.Name] = true
				} else if !nameKnown || (op.Err == ErrOK && op.Name == "") {
					unknownSeqParents[parentOf(op.Path)] = true
				}
			} else {
				structural[op.Path] = true
			}
		case Delete, GetChildren:
			structural[op.Path] = true
		case Multi:
			ok := nameKnown && op.Err == ErrOK
			for i := range op.Ops {
				visit(&op.Ops[i], ok)
			}
		}
	}
	for _, e := range entries {
		visit(&e.op, e.class != classUnknown)
	}
	// Every path a sequential create of unknown name may have created is
	// structural (it may exist, and its own children depend on it).
	childrenOf := map[string][]string{}
	for p := range allPaths {
		if q := parentOf(p); unknownSeqParents[q] {
			structural[p] = true
			childrenOf[q] = append(childrenOf[q], p)
		}
	}
	for q := range childrenOf {
		sort.Strings(childrenOf[q])
	}

	var fp func(op *Op, nameKnown bool, out []string) []string
	fp = func(op *Op, nameKnown bool, out []string) []string {
		switch op.Kind {
		case Create:
			if isSequentialMode(op.Mode) {
				q := parentOf(op.Path)
				out = append(out, q)
				if nameKnown && op.Err == ErrOK && op.Name != "" {
					out = append(out, op.Name)
				} else if !nameKnown || (op.Err == ErrOK && op.Name == "") {
					out = append(out, childrenOf[q]...)
				}
				return out
			}
			out = append(out, op.Path)
			if q := parentOf(op.Path); q != "" && structural[q] {
				out = append(out, q)
			}
		case Delete:
			out = append(out, op.Path)
			if q := parentOf(op.Path); q != "" && structural[q] {
				out = append(out, q)
			}
		case Multi:
			ok := nameKnown && op.Err == ErrOK
			for i := range op.Ops {
				out = fp(&op.Ops[i], ok, out)
			}
		case CloseSession:
		default:
			out = append(out, op.Path)
		}
		return out
	}
	for _, e := range entries {
		e.fp = fp(&e.op, e.class != classUnknown, nil)
	}
	for _, c := range entries {
		if c.op.Kind != CloseSession {
			continue
		}
		for _, e := range entries {
			if e == c || e.op.Session != c.op.Session || !e.op.Kind.IsWrite() || e.op.Kind == CloseSession {
				continue
			}
			if hasEphemeralCreate(&e.op) || e.class == classUnknown || e.op.Return >= c.op.Call {
				c.fp = append(c.fp, e.fp...)
			}
		}
	}
}

func hasEphemeralCreate(op *Op) bool {
	switch op.Kind {
	case Create:
		return isEphemeralMode(op.Mode)
	case Multi:
		for i := range op.Ops {
			if hasEphemeralCreate(&op.Ops[i]) {
				return true
			}
		}
	}
	return false
}

// unionFind is a disjoint-set forest over paths, each numbered once: a
// find walks a slice instead of looking every step up in a string map.
type unionFind struct {
	ids    map[string]int32
	parent []int32
}

// id returns x's number, giving it one (a set of its own) if new.
func (u *unionFind) id(x string) int32 {
	if i, ok := u.ids[x]; ok {
		return i
	}
	i := int32(len(u.parent))
	u.ids[x] = i
	u.parent = append(u.parent, i)
	return i
}

func (u *unionFind) find(i int32) int32 {
	for u.parent[i] != i {
		u.parent[i] = u.parent[u.parent[i]]
		i = u.parent[i]
	}
	return i
}

func (u *unionFind) union(a, b int32) {
	ra, rb := u.find(a), u.find(b)
	if ra != rb {
		u.parent[ra] = rb
	}
}

// partitionOperations is the Porcupine partition function: connected
// components of the operations' footprints, each in history order, ordered
// by their first operation. Operations with an empty footprint (a
// closeSession with nothing to close) form one extra partition.
func partitionOperations(history []porcupine.Operation) [][]porcupine.Operation {
	u := &unionFind{ids: map[string]int32{}}
	first := make([]int32, len(history)) // each operation's fp[0], numbered
	for k, op := range history {
		fp := op.Input.(*entry).fp
		if len(fp) == 0 {
			continue
		}
		f := u.id(fp[0])
		first[k] = f
		for _, p := range fp[1:] {
			u.union(f, u.id(p))
		}
	}
	index := make([]int32, len(u.parent)) // a root's partition + 1; 0: none yet
	var parts [][]porcupine.Operation
	var loose []porcupine.Operation
	for k, op := range history {
		if len(op.Input.(*entry).fp) == 0 {
			loose = append(loose, op)
			continue
		}
		root := u.find(first[k])
		i := int(index[root]) - 1
		if i < 0 {
			i = len(parts)
			index[root] = int32(i + 1)
			parts = append(parts, nil)
		}
		parts[i] = append(parts[i], op)
	}
	if len(loose) > 0 {
		parts = append(parts, loose)
	}
	return parts
}
