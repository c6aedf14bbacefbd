#!/usr/bin/env bash
# Runs every Go fuzz target in the module for $FUZZTIME each (default
# 2000x: an execution count). A duration budget ("3s") races the fuzz
# coordinator's deadline on a busy machine and can fail with a bare
# "context deadline exceeded" and no failing input (golang/go#75804, fixed
# in Go 1.27); a count has no deadline to race.
# `go test -fuzz` takes one target at a time, so list them first.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-2000x}
total=0
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "fuzz $pkg $target for $fuzztime"
    go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 1s -parallel 2
    total=$((total + 1))
  done
done
if [ "$total" -eq 0 ]; then
  echo "no fuzz targets found" >&2
  exit 1
fi
echo "fuzzed $total targets for $fuzztime each"
