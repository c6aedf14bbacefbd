package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
)

// startProfiles starts a CPU profile to cpuPath and an execution trace to
// tracePath (each if not empty) and returns the function that stops them
// and writes the allocation profile to memPath (if not empty). Profiles are
// read with `go tool pprof`, the trace with `go tool trace`.
func startProfiles(cpuPath, memPath, tracePath string) (func(*slog.Logger), error) {
	var tr *os.File
	if tracePath != "" {
		f, err := os.Create(tracePath)
		if err != nil {
			return nil, fmt.Errorf("create execution trace: %w", err)
		}
		if err := trace.Start(f); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("start execution trace: %w", err)
		}
		tr = f
	}
	stopTrace := func(log *slog.Logger) {
		if tr != nil {
			trace.Stop()
			if err := tr.Close(); err != nil {
				log.Error("writing the execution trace", "err", err)
			}
		}
	}
	var cpu *os.File
	if cpuPath != "" {
		f, err := os.Create(cpuPath)
		if err != nil {
			return nil, fmt.Errorf("create CPU profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			_ = f.Close()
			stopTrace(slog.New(slog.DiscardHandler))
			return nil, fmt.Errorf("start CPU profile: %w", err)
		}
		cpu = f
	}
	return func(log *slog.Logger) {
		stopTrace(log)
		if cpu != nil {
			pprof.StopCPUProfile()
			if err := cpu.Close(); err != nil {
				log.Error("writing the CPU profile", "err", err)
			}
		}
		if memPath == "" {
			return
		}
		f, err := os.Create(memPath)
		if err != nil {
			log.Error("creating the allocation profile", "err", err)
			return
		}
		runtime.GC()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			log.Error("writing the allocation profile", "err", err)
		}
		if err := f.Close(); err != nil {
			log.Error("writing the allocation profile", "err", err)
		}
	}, nil
}
