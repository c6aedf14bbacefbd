# zabkeeper — common tasks. `make run` starts a server on the embedded
# default (port 2181, data in ./data); `make test` is what CI runs.

GO        ?= go
FUZZTIME  ?= 3s
BENCHTIME ?= 1s

.PHONY: run build test unit vet fuzz fuzz-long bench clean

run:
	$(GO) run ./cmd/zabkeeper server

build:
	$(GO) build -o bin/zabkeeper ./cmd/zabkeeper

# The full check: formatting, vet, every test with the race detector, then
# every fuzz target briefly over its checked-in corpus.
test: vet unit fuzz

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout 15m ./...

fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

fuzz-long:
	FUZZTIME=5m ./scripts/fuzz.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

clean:
	rm -rf bin data
