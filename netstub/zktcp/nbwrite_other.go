//go:build !unix

package zktcp

import "errors"

// writeNonblock is not available here: every packet goes through the
// link's writer.
func writeNonblock(uintptr, []byte) (int, error) {
	return 0, errors.New("zktcp: no non-blocking socket write on this platform")
}

// directWrites tells whether trySendLocked may write from the sender.
const directWrites = false
