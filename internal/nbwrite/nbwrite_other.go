//go:build !unix

package nbwrite

import "errors"

// Supported tells whether Write can write without blocking here.
const Supported = false

func WriteFD(uintptr, []byte) (int, error) {
	return 0, errors.New("nbwrite: no non-blocking socket write on this platform")
}
