package linearizability

import (
	"fmt"

	"github.com/anishathalye/porcupine"
)

// describeEntry renders a checked operation for Porcupine's visualization:
// request, recorded outcome, and how the checker treated it.
func describeEntry(e *entry) string {
	op := &e.op
	s := describeRequest(op) + " → "
	switch e.class {
	case classUnknown:
		s += "? (outcome unknown)"
	case classRejected:
		s += describeOutcome(op) + " (rejected, unchecked)"
	default:
		s += describeOutcome(op)
	}
	if e.synced {
		s += " [sync+read]"
	}
	return fmt.Sprintf("s%#x %s", op.Session, s)
}

// WriteVisualization writes Porcupine's interactive HTML visualization of the
// check res (as returned by CheckLinearizable for h) to path. For a history
// that is not linearizable it shows, per partition, the longest partial
// linearizations and the model state after each step, which points at the
// operation that could not be explained. If res carries no linearization data
// (a zero Result), the check is run again, without a timeout, to obtain it.
func WriteVisualization(h History, res Result, path string) error {
	info := res.Info
	if len(info.PartialLinearizations()) == 0 && res.OpsChecked == 0 {
		p, err := prepare(&h)
		if err != nil {
			return err
		}
		if len(p.ops) > 0 {
			_, info = porcupine.CheckOperationsVerbose(newModel(), p.ops, 0)
		}
	}
	return porcupine.VisualizePath(newModel(), info, path)
}
