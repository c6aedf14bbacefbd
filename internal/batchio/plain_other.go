//go:build !unix

package batchio

import "errors"

var errUnsupported = errors.New("batchio: no non-blocking socket calls on this platform")

func sendFD(uintptr, []byte) (int, error) { return 0, errUnsupported }
func recvFD(uintptr, []byte) (int, error) { return 0, errUnsupported }
