package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
)

// startProfiles starts a CPU profile to cpuPath (if not empty) and returns
// the function that stops it and writes the allocation profile to memPath
// (if not empty). Profiles are read with `go tool pprof`.
func startProfiles(cpuPath, memPath string) (func(*slog.Logger), error) {
	var cpu *os.File
	if cpuPath != "" {
		f, err := os.Create(cpuPath)
		if err != nil {
			return nil, fmt.Errorf("create CPU profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("start CPU profile: %w", err)
		}
		cpu = f
	}
	return func(log *slog.Logger) {
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
