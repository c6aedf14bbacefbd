package load

import (
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"

	"github.com/zabkeeper/zabkeeper/linearizability"
)

// ErrCode maps a go-zk error to a ZooKeeper reply code; ok is false when
// the outcome is unknown (connection lost, session gone, client closing).
func ErrCode(err error) (code int32, ok bool) {
	switch {
	case err == nil:
		return linearizability.ErrOK, true
	case errors.Is(err, zk.ErrNoNode):
		return linearizability.ErrNoNode, true
	case errors.Is(err, zk.ErrNodeExists):
		return linearizability.ErrNodeExists, true
	case errors.Is(err, zk.ErrBadVersion):
		return linearizability.ErrBadVersion, true
	case errors.Is(err, zk.ErrNotEmpty):
		return linearizability.ErrNotEmpty, true
	case errors.Is(err, zk.ErrNoChildrenForEphemerals):
		return linearizability.ErrNoChildrenForEphemeral, true
	case errors.Is(err, zk.ErrBadArguments):
		return linearizability.ErrBadArguments, true
	}
	// ErrConnectionClosed, ErrSessionExpired, ErrNoServer, ErrClosing,
	// timeouts and anything unexpected: the request may or may not have
	// been applied.
	return linearizability.ErrConnectionLoss, false
}

// zkErrCodes maps go-zk's errors to their codes, for the per-op results of
// a multi (which are definite: the multi reached the server).
var zkErrCodes = map[error]int32{
	zk.ErrAPIError: -100, zk.ErrNoNode: -101, zk.ErrNoAuth: -102, zk.ErrBadVersion: -103,
	zk.ErrNoChildrenForEphemerals: -108, zk.ErrNodeExists: -110, zk.ErrNotEmpty: -111,
	zk.ErrSessionExpired: -112, zk.ErrInvalidACL: -114, zk.ErrAuthFailed: -115, zk.ErrClosing: -116,
	zk.ErrNothing: -117, zk.ErrSessionMoved: -118, zk.ErrBadArguments: -8,
}

// SubCode is the code of one multi sub-result. go-zk has no error value
// for RuntimeInconsistency (-2) and reports it as "unknown error: -2".
func SubCode(err error) int32 {
	if err == nil {
		return linearizability.ErrOK
	}
	if c, ok := zkErrCodes[err]; ok {
		return c
	}
	var c int32
	if _, e := fmt.Sscanf(err.Error(), "unknown error: %d", &c); e == nil {
		return c
	}
	return -1 // SystemError: not modelled, so the multi is checked as opaque
}
