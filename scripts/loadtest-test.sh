#!/usr/bin/env bash
# Runs the tests of the load-test tools (loadtest/, its own Go module): the
# k6/x/mail extension's IMAP, POP3 and LMTP clients against a real
# mailstore (cmd/mailstore -target=all on the embedded backends, built from
# this repository and started by the tests), and a smoke run of
# loadtest/scripts/smoke.js with the real k6 for a few seconds.
#
#   scripts/loadtest-test.sh              # as `make test` does
#   scripts/loadtest-test.sh -run IMAP    # extra arguments go to `go test`
#
# k6 with the extension is built by scripts/loadtest-build.sh (cached by
# version and source hash under ~/.cache/mailstore-tools; minutes when
# cold). While it builds, the test binary and mailstore/mailctl are
# compiled, so the tests start from a warm build cache.
set -euo pipefail

log() { echo "loadtest-test: $*" >&2; }
die() { log "$*"; exit 1; }

command -v go >/dev/null || die "go not found on PATH"
root="$(cd "$(dirname "$0")/.." && pwd)"

start=$SECONDS
k6_out="$(mktemp)"
warm_dir="$(mktemp -d)"
trap 'rm -rf "$k6_out" "$warm_dir"' EXIT
"$root/scripts/loadtest-build.sh" >"$k6_out" &
k6_pid=$!

# Meanwhile: the binaries the tests build (same flags, so they come from
# the build cache), then the test binary.
(cd "$root" && GOWORK= go build -o "$warm_dir/" ./cmd/mailstore ./cmd/mailctl) ||
  log "go build ./cmd/mailstore ./cmd/mailctl failed; the tests will say more"
(cd "$root/loadtest" && go test -count=1 -run '^$' ./... >/dev/null) || die "loadtest does not compile"

wait "$k6_pid" || die "building k6 failed"
k6="$(cat "$k6_out")"
[ -x "$k6" ] || die "scripts/loadtest-build.sh printed no binary"
log "tools ready after $((SECONDS - start))s"

cd "$root/loadtest"
# The root's `go vet ./...` does not see this module.
go vet ./...
MAILSTORE_K6="$k6" K6_NO_USAGE_REPORT=true go test -count=1 -timeout 10m "$@" ./...
