# idsync: build, test and measure. `make test` is the test command CI runs.
GO            ?= go
STATICCHECK   ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME      ?= 20s
BIN           ?= bin/idsync
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS       := -X github.com/idsync/idsync/internal/version.Version=$(VERSION)
REVISION      ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS       += -X github.com/idsync/idsync/internal/version.Revision=$(REVISION)
# Archive entries and the image are dated at the last commit, so a rebuild gives the same bytes.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
IMAGE_ARCH    ?= $(shell $(GO) env GOARCH)

.PHONY: all build test lint demo bench fuzz reliability simulate clean
.PHONY: image dist

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/idsync

test:
	$(GO) vet ./...
	$(GO) test -race ./...

lint:
	$(GO) run $(STATICCHECK) ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

demo:
	$(GO) run ./cmd/idsync demo

bench:
	$(GO) run ./cmd/idsync bench --scenario initial --users 2000 --groups 100 --memberships-per-user 5 --latency 10ms --rate 200

fuzz:
	./internal/fuzz.sh $(FUZZTIME)

reliability:
	IDSYNC_LONG=1 IDSYNC_RELIABILITY_REPORT=$(CURDIR)/bin/reliability.json $(GO) test -race -count=1 -timeout 15m -run 'Reliability|Fault|Crash|Outage' ./internal/reliability/... && cat bin/reliability.json

# simulate: SEEDS seeds of the whole-system simulation (internal/simulation) from START, on
# parallel workers, without -race; SEED=n replays one seed with its step log. State files go
# to /dev/shm when there is one (each journal write is an fsync). Exits non-zero on any
# broken invariant, listing each with its replay line.
SEEDS ?= 1000
START ?= 1
SEED  ?=
simulate:
	@dir=$$(test -d /dev/shm && test -w /dev/shm && echo /dev/shm || echo "$${TMPDIR:-/tmp}"); \
	if [ -n "$(SEED)" ]; then sel="IDSYNC_SIM_SEED=$(SEED)"; else sel="IDSYNC_SIM_SEEDS=$(SEEDS) IDSYNC_SIM_START=$(START)"; fi; \
	env $$sel IDSYNC_SIM_STATE_DIR="$$dir" GOGC=400 $(GO) test -count=1 -timeout 60m -v -run '^TestSimulation$$' ./internal/simulation/

clean:
	rm -rf bin idsync-demo.db

# OCI image tarball without a container engine: docker load -i bin/idsync-image.tar
image:
	CGO_ENABLED=0 GOOS=linux GOARCH=$(IMAGE_ARCH) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/idsync-linux-$(IMAGE_ARCH) ./cmd/idsync
	$(GO) run ./internal/packaging/cmd/mkimage -bin bin/idsync-linux-$(IMAGE_ARCH) -out bin/idsync-image.tar -version '$(VERSION)' -revision '$(REVISION)' -created '$(SOURCE_DATE_EPOCH)'

# Release archives for linux and darwin on amd64 and arm64, and bin/dist/SHA256SUMS.
dist:
	rm -rf bin/dist
	$(GO) run ./internal/packaging/cmd/mkdist -version '$(VERSION)' -ldflags '$(LDFLAGS)' -out bin/dist -mtime '$(SOURCE_DATE_EPOCH)'

# The state file after a year of 15-minute passes, with and without state.retention, and
# compacted (sizes and prune cost per pass; about a minute).
.PHONY: bench-state
bench-state:
	$(GO) test ./state -run '^$$' -bench StateYear -benchtime=1x
