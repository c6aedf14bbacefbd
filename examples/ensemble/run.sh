#!/usr/bin/env bash
# Starts a local three-server zabkeeper ensemble from zoo1.cfg..zoo3.cfg:
# clients on 127.0.0.1:2181,2182,2183, admin HTTP on 127.0.0.1:7181,7182,7183,
# data under ./data/ensemble/N.
# Ctrl-C stops all three.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
mkdir -p bin
go build -o bin/zabkeeper ./cmd/zabkeeper
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' INT TERM EXIT
for i in 1 2 3; do
  mkdir -p "data/ensemble/$i"
  echo "$i" > "data/ensemble/$i/myid"
  bin/zabkeeper server --config "examples/ensemble/zoo$i.cfg" 2> "data/ensemble/$i/server.log" &
  pids+=($!)
done
echo "ensemble starting: clients connect to 127.0.0.1:2181,127.0.0.1:2182,127.0.0.1:2183"
echo "logs in data/ensemble/N/server.log; Ctrl-C stops it"
wait
