//go:build !linux

package batchio

import "errors"

type ring struct{}

func newRing(uint32) (*ring, error) { return nil, errors.New("batchio: io_uring is Linux's") }

func (*ring) close() error               { return nil }
func (*ring) submit([]Op, []int32, bool) {}
