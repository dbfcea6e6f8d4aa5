# mailstore: see README.md. `make run` needs only Go; `make test` installs
# and starts the real servers the tests use (redis-server from apt,
# versitygw and MinIO built with `go install` at pinned versions, cached
# under ~/.cache/mailstore-tools).

GO       ?= go
BIN      := bin
DATA     ?= ./data
PKGS     ?= ./...
# The environment of the test servers: scripts/tools.sh installs what is
# missing and prints the exports.
# `eval` alone would hide a failure of the script, hence the && chain.
TOOLS    = exports="$$(scripts/tools.sh $(TOOLS_FLAGS))" && eval "$$exports"
BENCHTIME ?= 1s
# FUZZTIME is how long make test runs each fuzz target (scripts/fuzz.sh).
FUZZTIME ?= 5s
# DURATION, SEED and REDIS (standalone or cluster) steer make chaos.
DURATION ?= 5m
SEED ?=
REDIS ?= standalone

.PHONY: all run build test test-quick check lint vet fmt proto proto-check bench bench-imap bench-pop3 bench-lmtp chaos loadtest loadtest-compare loadtest-build loadtest-test clean tools

all: build

## run: the whole system in one process on the embedded backends (no Redis, no S3).
run: build
	$(BIN)/mailstore -target=all -data-dir=$(DATA) -demo-account=demo@example.com -log.format=text

## build: the mailstore and mailctl binaries under ./bin.
build:
	$(GO) build -o $(BIN)/ ./cmd/mailstore ./cmd/mailctl

## test: everything CI runs: lint, generated-code drift, and every test with -race against real servers.
test: TOOLS_FLAGS = --with-protoc
test: lint
	@$(TOOLS) && scripts/proto-check.sh
	@$(TOOLS) && MAILSTORE_REQUIRE_SERVERS=1 $(GO) test -race -count=1 -timeout 30m $(PKGS)
	@scripts/deploy-test.sh
	@FUZZTIME=$(FUZZTIME) scripts/fuzz.sh
	@scripts/loadtest-test.sh

## test-quick: unit tests without -race; tests needing servers use them if installed, else skip.
test-quick:
	$(GO) test -count=1 $(PKGS)

## tools: install the pinned test servers (prints their paths).
tools:
	@scripts/tools.sh

## lint: gofmt and go vet.
lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./... ./proto/...

fmt:
	gofmt -w $$(git ls-files '*.go' | grep -v '\.pb\.go$$')

## proto: regenerate the gRPC code (checked in).
proto:
	scripts/proto.sh

## bench: benchmarks of both metadata backends, every blob backend and the IMAP and POP3 gateways; see docs/benchmarks.md.
bench:
	@$(TOOLS) && MAILSTORE_REQUIRE_SERVERS=1 $(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) -timeout 60m \
		./pkg/meta/localmeta/ ./pkg/meta/redismeta/ ./pkg/blob/fsblob/ ./pkg/blob/s3blob/ ./pkg/blob/grpcblob/ ./pkg/mime/ ./pkg/password/ \
		./services/imapgw/ ./services/pop3gw/

## bench-imap: the IMAP gateway's benchmarks only (a few minutes; 10,000 IDLE sessions want an open-file limit above 10,256, else fewer are measured).
bench-imap:
	@$(TOOLS) && MAILSTORE_REQUIRE_SERVERS=1 $(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) -timeout 30m \
		./services/imapgw/

## chaos: the chaos run (kills, pauses, Redis and S3 restarts under a mixed workload) with the history check; DURATION (default 5m), SEED=n replays a run's choices, REDIS=cluster runs it on a 3-master Redis Cluster. make test runs a 60 s version, and 45 s on a cluster.
chaos:
	@$(TOOLS) && MAILSTORE_REQUIRE_SERVERS=1 MAILSTORE_CHAOS_DURATION=$(DURATION) MAILSTORE_CHAOS_SEED=$(SEED) MAILSTORE_CHAOS_REDIS=$(REDIS) \
		MAILSTORE_CHAOS_REPORT_DIR=$${MAILSTORE_CHAOS_REPORT_DIR:-/tmp/mailstore-chaos} \
		$(GO) test -race -count=1 -run '^TestChaos$$' -v -timeout 60m ./cmd/mailstore/

## bench-lmtp: LMTP delivery side by side with Dovecot's LMTP (installs dovecot-lmtpd from Debian if missing; about 3 minutes).
bench-lmtp:
	scripts/bench-lmtp-dovecot.sh

## loadtest: one k6 scenario (SCENARIO=office-day, shared-account, login-storm, big-mail, pop3-drain; DURATION, USERS) against a local multi-process stack.
SCENARIO ?= office-day
loadtest:
	@DURATION=$(if $(filter command line environment,$(origin DURATION)),$(DURATION),30s) scripts/loadtest.sh $(SCENARIO)

## loadtest-compare: every scenario against mailstore, then against a private Dovecot, on this machine; rewrites the k6 section of docs/benchmarks.md and docs/img (DURATION, USERS, SCENARIOS).
loadtest-compare:
	@DURATION=$(if $(filter command line environment,$(origin DURATION)),$(DURATION),30s) scripts/loadtest-compare.sh

## loadtest-build: k6 with the k6/x/mail extension, built from the Go module proxy (prints its path).
loadtest-build:
	@scripts/loadtest-build.sh

## loadtest-test: the k6 extension's tests against a real mailstore, and a k6 smoke run.
loadtest-test:
	@scripts/loadtest-test.sh

## bench-pop3: the POP3 gateway's benchmarks only (under a minute).
bench-pop3:
	@$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) -timeout 30m ./services/pop3gw/

clean:
	rm -rf $(BIN)
