//go:build !linux

package batchio

import "errors"

// Syncer is Linux's (io_uring); elsewhere NewSyncer says so and callers
// fsync as usual.
type Syncer struct{}

func NewSyncer() (*Syncer, error) { return nil, errors.New("batchio: io_uring is Linux's") }

func (*Syncer) Datasync(uintptr) error { return errors.New("batchio: no Syncer here") }
func (*Syncer) Close() error           { return nil }
