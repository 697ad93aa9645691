.PHONY: build test demo lint chaos fuzz vulncheck bench bench-micro
build:
	go build -o bin/sweeper ./cmd/sweeper
# The test command (the same line README.md and .ci/run give).
test:
	go test -race -count=1 ./...
demo:
	scripts/demo.sh
lint:
	gofmt -l $$(git ls-files '*.go'); go vet ./...; go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
# The chaos harness (docs/RELIABILITY.md); e.g. make chaos DEPOSITS=10000.
DEPOSITS ?= 2000
chaos: build
	bin/sweeper chaos -deposits $(DEPOSITS) -v $(CHAOS_FLAGS)
# Every fuzz target for FUZZTIME each (CI runs 30s); e.g. make fuzz FUZZTIME=30m.
FUZZTIME ?= 30s
fuzz:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh
vulncheck:
	scripts/govulncheck.sh
# The performance figures (docs/PERFORMANCE.md), ~1 min on loopback; e.g.
# make bench BENCH=ingest BENCH_FLAGS='-senders 1,4,16,64'. bench-micro: go test -bench.
BENCH ?= all
bench: build
	bin/sweeper bench $(BENCH) $(BENCH_FLAGS)
bench-micro:
	go test -run '^$$' -bench . -benchmem ./internal/webhook/ ./internal/store/
