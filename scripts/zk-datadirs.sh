#!/bin/bash
# zk-datadirs.sh OUTDIR: make ZooKeeper data directories with Debian's
# Apache ZooKeeper 3.8 (apt-get install zookeeper), for zabkeeper's
# interoperability tests (disk/testdata/zk38). Each directory is what
# ZooKeeper leaves after SIGKILL while clients hold sessions:
#
#   standalone/   dataDir = dataLogDir; two runs on the same directory (so
#                 several log files, the older ones ending in their
#                 preallocated zeros) and snapshots (snapCount=16)
#   datalogdir/   dataDir/ and a separate logs/ (dataLogDir)
#   ensemble/     n1/ n2/ n3/: a 3-server ensemble (myid, acceptedEpoch,
#                 currentEpoch), written to, all killed, restarted (a new
#                 epoch), written to again and killed
#
# The client writes come from scripts/zkdatadirs (every txn type a client
# can cause). Logs are preallocated 16 KiB at a time
# (zookeeper.preAllocSize) to keep the fixtures small. Beside every log
# file, <file>.toolkit.txt is ZooKeeper's own TxnLogToolkit dump of it,
# which the tests compare with what zabkeeper decodes.
#
# Environment: JAVA (java), ZK_CLASSPATH (/usr/share/java/zookeeper.jar).
set -euo pipefail

out=${1:?usage: zk-datadirs.sh OUTDIR}
java=${JAVA:-java}
cp=${ZK_CLASSPATH:-/usr/share/java/zookeeper.jar}
[ -r "${cp%%:*}" ] || { echo "zk-datadirs: $cp not found: apt-get install -y zookeeper" >&2; exit 1; }
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

(cd "$here" && go build -o "$work/zkdatadirs" ./scripts/zkdatadirs)

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_zk NAME DATADIR DATALOGDIR PORT: starts ZooKeeper standalone and
# waits until it answers; sets zk_pid.
start_zk() {
	local name=$1 data=$2 logs=$3 port=$4
	mkdir -p "$data" "$logs"
	cat >"$work/$name.cfg" <<CFG
tickTime=2000
dataDir=$data
dataLogDir=$logs
clientPort=$port
clientPortAddress=127.0.0.1
admin.enableServer=false
snapCount=16
CFG
	"$java" -Xmx256m -Dzookeeper.preAllocSize=16 -Dzookeeper.extendedTypesEnabled=true \
		-Dzookeeper.log.dir="$work" -cp "$cp" \
		org.apache.zookeeper.server.quorum.QuorumPeerMain "$work/$name.cfg" >>"$work/$name.log" 2>&1 &
	zk_pid=$!
	pids+=("$zk_pid")
	for _ in $(seq 300); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
		kill -0 "$zk_pid" 2>/dev/null || { cat "$work/$name.log" >&2; exit 1; }
		sleep 0.1
	done
	echo "zk-datadirs: ZooKeeper $name did not listen on $port" >&2
	cat "$work/$name.log" >&2
	exit 1
}

# write PORT ROOT [hold]: runs the writer; with hold, leaves it running with
# its session open once it printed "written", and sets writer_pid.
write() {
	local port=$1 root=$2
	if [ "${3:-}" = hold ]; then
		"$work/zkdatadirs" -addr "127.0.0.1:$port" -root "$root" -hold >"$work/writer.out" 2>&1 &
		writer_pid=$!
		pids+=("$writer_pid")
		for _ in $(seq 300); do
			grep -q written "$work/writer.out" && return 0
			kill -0 "$writer_pid" 2>/dev/null || { cat "$work/writer.out" "$work"/*.log >&2; exit 1; }
			sleep 0.1
		done
		echo "zk-datadirs: the writer did not finish" >&2
		exit 1
	fi
	"$work/zkdatadirs" -addr "127.0.0.1:$port" -root "$root"
}

kill9() { kill -9 "$1"; wait "$1" 2>/dev/null || true; }

# start_ensemble: starts three servers of an ensemble in $work/ensemble
# (n1..n3) and sets ens_pids and ens_ports (their client ports).
ens_ports=()
start_ensemble() {
	if [ ${#ens_ports[@]} -eq 0 ]; then
		for i in 1 2 3; do ens_ports+=("$(free_port)"); q[$i]=$(free_port); e[$i]=$(free_port); done
	fi
	ens_pids=()
	for i in 1 2 3; do
		local d="$work/ensemble/n$i"
		mkdir -p "$d"
		printf '%s\n' "$i" >"$d/myid"
		cat >"$work/ens$i.cfg" <<CFG
tickTime=500
initLimit=20
syncLimit=10
dataDir=$d
clientPort=${ens_ports[$((i - 1))]}
clientPortAddress=127.0.0.1
admin.enableServer=false
snapCount=16
server.1=127.0.0.1:${q[1]}:${e[1]}
server.2=127.0.0.1:${q[2]}:${e[2]}
server.3=127.0.0.1:${q[3]}:${e[3]}
CFG
		"$java" -Xmx256m -Dzookeeper.preAllocSize=16 -Dzookeeper.extendedTypesEnabled=true \
			-Dzookeeper.log.dir="$work" -cp "$cp" \
			org.apache.zookeeper.server.quorum.QuorumPeerMain "$work/ens$i.cfg" >>"$work/ens$i.log" 2>&1 &
		ens_pids+=("$!")
		pids+=("$!")
	done
	local all
	all=$(printf '127.0.0.1:%s,' "${ens_ports[@]}")
	ens_addr=${all%,}
}

# standalone: two runs, each killed with sessions open.
port=$(free_port)
start_zk standalone "$work/standalone" "$work/standalone" "$port"
write "$port" /fx hold
kill9 "$zk_pid"
kill9 "$writer_pid"
start_zk standalone "$work/standalone" "$work/standalone" "$port"
write "$port" /fx2 hold
kill9 "$zk_pid"
kill9 "$writer_pid"

# datalogdir: the log apart from the snapshots.
port=$(free_port)
start_zk datalogdir "$work/datalogdir/data" "$work/datalogdir/logs" "$port"
write "$port" /fx hold
kill9 "$zk_pid"
kill9 "$writer_pid"

# ensemble: two epochs.
start_ensemble
"$work/zkdatadirs" -addr "$ens_addr" -root /fx -hold >"$work/writer.out" 2>&1 &
writer_pid=$!
pids+=("$writer_pid")
for _ in $(seq 600); do grep -q written "$work/writer.out" && break; sleep 0.1; done
grep -q written "$work/writer.out" || { cat "$work/writer.out" "$work"/ens*.log >&2; exit 1; }
sleep 1 # the followers log the last proposals too
for p in "${ens_pids[@]}"; do kill9 "$p"; done
kill9 "$writer_pid"
start_ensemble
rm -f "$work/writer.out"
"$work/zkdatadirs" -addr "$ens_addr" -root /fx2 -hold >"$work/writer.out" 2>&1 &
writer_pid=$!
pids+=("$writer_pid")
for _ in $(seq 600); do grep -q written "$work/writer.out" && break; sleep 0.1; done
grep -q written "$work/writer.out" || { cat "$work/writer.out" "$work"/ens*.log >&2; exit 1; }
sleep 1
for p in "${ens_pids[@]}"; do kill9 "$p"; done
kill9 "$writer_pid"

mkdir -p "$out"
for d in standalone datalogdir ensemble; do
	rm -rf "${out:?}/$d"
	cp -r "$work/$d" "$out/$d"
done
# ZooKeeper's own reading of every log it wrote.
find "$out" -name 'log.*' ! -name '*.txt' | sort | while read -r f; do
	TZ=UTC "$java" -Duser.language=en -Duser.country=US -cp "$cp" \
		org.apache.zookeeper.server.persistence.TxnLogToolkit "$f" >"$f.toolkit.txt" 2>/dev/null
done
echo "zk-datadirs: wrote $(find "$out" -type f | wc -l) files under $out"
