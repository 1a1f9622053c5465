# idsync: build, test and measure. `make test` is the test command CI runs.
GO            ?= go
STATICCHECK   ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME      ?= 20s
BIN           ?= bin/idsync
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS       := -X github.com/idsync/idsync/internal/version.Version=$(VERSION)

.PHONY: all build test lint demo bench fuzz reliability clean

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

clean:
	rm -rf bin idsync-demo.db
