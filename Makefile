# zabkeeper — common tasks. `make run` starts a server on the embedded
# default (port 2181, data in ./data); `make test` is what CI runs.

GO        ?= go
FUZZTIME  ?= 2000x
BENCHTIME ?= 1s

.PHONY: run ensemble faults faults-tls faults-reconfig interop interop-swap build test unit vet fuzz fuzz-long bench bench-compare sim sim-ci sim-long sim-bugs clean image docker-test

# The container image's name; deploy/compose and deploy/kubernetes name the
# same one (deploy/manifests_test.go checks that they agree).
IMAGE     ?= zabkeeper:dev

run:
	$(GO) run ./cmd/zabkeeper server

# A local three-server ensemble from examples/ensemble (clients on 2181-2183).
ensemble:
	./examples/ensemble/run.sh

build:
	$(GO) build -o bin/zabkeeper ./cmd/zabkeeper

# The full check: formatting, vet, every test with the race detector, the
# planted-bug checks of the simulator, then every fuzz target briefly over
# its checked-in corpus.
test: vet unit sim-ci sim-bugs fuzz

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# faults/ runs without the race detector: it drives go-zookeeper/zk through
# reconnects with watches set, where go-zk v1.0.4 itself reads its lastZxid
# in sendSetWatches while recvLoop writes it (go-zookeeper/zk#35, open), a
# race in the client library that fails a -race run now and then.
# faults/interop (JVM ensembles, a few minutes) runs in make interop only.
unit:
	$(GO) test -race -count=1 -timeout 15m $$($(GO) list ./... | grep -v -e '/faults$$' -e '/faults/interop$$')
	$(GO) test -count=1 -timeout 10m ./faults/

fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

fuzz-long:
	FUZZTIME=5m ./scripts/fuzz.sh

# The real-process fault harness, longer than the 12 s runs in make unit:
# ensembles of 3 and then 5 zabkeeper processes behind fault proxies;
# SIGKILL and restart (of a minority, sometimes a majority), SIGSTOP of the
# leader, partitions, one-way cuts, slow links and wipe-and-restart of a
# follower under go-zk load; the history checked for linearizability, read
# guarantees, acknowledged writes lost and watch events. 2 min of faults
# per size; FAULTS_ARGS adds flags (e.g. FAULTS_ARGS=-faults.seed=N).
faults:
	$(GO) test -count=1 -v -run TestFaultsLinearizable ./faults/ -faults.servers=3,5 -faults.duration=2m -timeout 30m $(FAULTS_ARGS)

# The same with the peer links over mutual TLS (sslQuorum=true), 3 servers.
faults-tls:
	$(GO) test -count=1 -v -run TestFaultsLinearizable ./faults/ -faults.servers=3 -faults.duration=1m -faults.quorum-tls -timeout 20m $(FAULTS_ARGS)

# Reconfigs (opcode 16) while the process faults run (-faults.reconfig:
# kills, SIGSTOPs and wipes; no proxies, so no network faults): 3 and 5
# members plus 2 spare servers that reconfigs add, 2 min each. go test
# ./faults (make unit) runs 12 s of it on 3 servers (TestFaultsReconfig).
faults-reconfig:
	$(GO) test -count=1 -v -run TestFaultsLinearizable ./faults/ -faults.servers=3,5 -faults.duration=2m -faults.reconfig -timeout 30m $(FAULTS_ARGS)

# Interop with the real Apache ZooKeeper 3.8 (Debian's zookeeper package,
# installed here if missing; faults/interop): a 3-server ZooKeeper ensemble
# under recorded go-zk writers and a client holding an ephemeral, restarted
# one server at a time (followers, then the leader); no acknowledged write
# lost, no session expired, the same tree (Stat fields included) on every
# server, a linearizable history. Prints the write pause per step and the
# failover time. ~1-2 min. INTEROP_ARGS adds flags.
interop:
	@test -f /usr/share/java/zookeeper.jar && test -f /usr/share/java/slf4j-simple.jar && command -v java >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zookeeper libslf4j-java >/dev/null; }
	$(GO) test -count=1 -v -timeout 30m ./faults/interop/ $(INTEROP_ARGS)

# The full interop set: the baseline, then the same ensemble migrated to
# zabkeeper one server at a time (zabkeeper.peerProtocol=zookeeper) and one
# put back, and a mixed ensemble (zabkeeper leader, ZooKeeper follower and
# observer) under a partition and a leader SIGKILL (issue 17), and the same
# faults on three zabkeeper servers with their own peer protocol.
interop-swap:
	$(MAKE) interop INTEROP_ARGS="-interop.swap -interop.mixed -interop.native $(INTEROP_ARGS)"

# The simulator's CI budget without the race detector: 100 seeds each of 3
# and 5 voters and 30 of 7, with every fault kind (make unit runs a smaller
# set under the race detector). 100, not the 150 of before the aimed faults
# and power losses: their seeds cost Porcupine more (histories with more
# writes of unknown outcome), and 100 of them take the time 150 took before.
sim-ci:
	$(GO) test -count=1 -run 'TestSim$$' ./sim/ -seeds 100
	$(GO) test -count=1 -run 'TestSim$$' ./sim/ -seeds 30 -nodes 7

# The simulator's planted bugs (build tag simbugs): each must be caught by
# its pinned seed, which passes without the bug.
sim-bugs:
	$(GO) test -tags simbugs -count=1 -run 'TestPlantedBug' ./sim/

# A simulation campaign: 1,000 seeds of 3 or 5 voters with every fault kind.
sim:
	$(GO) run ./cmd/zabkeeper sim --seeds 1000 --faults all

# A long campaign: 10,000 seeds of a 5-voter ensemble.
sim-long:
	$(GO) run ./cmd/zabkeeper sim --seeds 10000 --nodes 5 --faults all

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

# The container image (deploy/docker/Dockerfile, FROM scratch): the static
# binary is built here on the host, then packed by Docker's legacy builder.
image:
	rm -rf bin/image && mkdir -p bin/image/data
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o bin/image/zabkeeper ./cmd/zabkeeper
	cp deploy/docker/passwd deploy/docker/group deploy/docker/zoo.cfg bin/image/
	DOCKER_BUILDKIT=0 docker build -q -f deploy/docker/Dockerfile -t $(IMAGE) bin/image
	docker image ls $(IMAGE)

# The container tests (deploy/dockertest): builds the image, starts the
# deploy/compose ensemble under a project name of its own and drives it from
# the host through kills, restarts, network cuts and a rolling restart. Needs
# a running Docker daemon and docker-compose; .ci/run provides both.
docker-test:
	ZABKEEPER_DOCKER_TEST=1 $(GO) test -count=1 -v -timeout 15m ./deploy/dockertest/ -image $(IMAGE)

# zabkeeper beside Apache ZooKeeper (Debian's package, installed here if
# missing) with one zoo.cfg, standalone and 3 servers, interleaved; fills
# ZNODES znodes for RSS and restart time, kills a leader for failover time.
# Writes BENCHMARKS.md and docs/benchmarks.svg. Takes 30-60 min at full size;
# COMPARE_ARGS adds flags (e.g. COMPARE_ARGS="--duration 5s --rounds 1";
# bin/zabkeeper bench compare --help lists them).
ZNODES ?= 1000000
bench-compare: build
	@test -f /usr/share/java/zookeeper.jar && command -v java >/dev/null || \
	  { apt-get update && apt-get install -y zookeeper; }
	./bin/zabkeeper bench compare --znodes $(ZNODES) --out BENCHMARKS.md --svg docs/benchmarks.svg $(COMPARE_ARGS)

clean:
	rm -rf bin data
