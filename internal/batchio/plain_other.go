//go:build !unix

package batchio

import (
	"errors"

	"github.com/zabkeeper/zabkeeper/internal/nbwrite"
)

var errUnsupported = errors.New("batchio: no non-blocking socket calls on this platform")

func recvFD(uintptr, []byte) (int, error) { return 0, errUnsupported }

func sendFD(fd uintptr, b []byte) (int, error) { return nbwrite.WriteFD(fd, b) }
