#!/usr/bin/env bash
# Builds k6 with the k6/x/mail extension (loadtest/, its own Go module) and
# prints the binary's path on stdout; progress goes to stderr.
#
#   k6="$(scripts/loadtest-build.sh)" && "$k6" run loadtest/scripts/smoke.js
#
# The binary is a plain main package (loadtest/cmd/k6) that blank-imports
# the extension and calls k6's cmd.Execute, built at the versions pinned in
# loadtest/go.mod and go.sum, from the Go module proxy only (no VCS
# fallback, go.sum must already cover everything). It lands in
# ${MAILSTORE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/mailstore-tools}/k6-VERSION-HASH/k6,
# where HASH covers go.mod, go.sum, the extension's and main's sources and
# the Go version, so an unchanged tree is built once (about 2 minutes cold
# on 2 cores) and any change to them builds beside the old one.
set -euo pipefail

log() { echo "loadtest-build: $*" >&2; }
die() { log "$*"; exit 1; }

command -v go >/dev/null || die "go not found on PATH"
root="$(cd "$(dirname "$0")/.." && pwd)"
lt="$root/loadtest"
tools="${MAILSTORE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/mailstore-tools}"
mkdir -p "$tools"

k6_version="$(awk '$1 == "go.k6.io/k6" { print $2; exit }' "$lt/go.mod")"
[ -n "$k6_version" ] || die "loadtest/go.mod does not require go.k6.io/k6"

# The sources that make the binary: every non-test Go file of the module,
# in a stable order, with the module files and the Go version.
hash="$(
  cd "$lt"
  {
    go env GOVERSION
    cat go.mod go.sum
    find . -name '*.go' ! -name '*_test.go' ! -path './internal/nogenproto/*' ! -path './cmd/report/*' -print | LC_ALL=C sort |
      while read -r f; do echo "== $f"; cat "$f"; done
  } | sha256sum | cut -c1-16
)"
dir="$tools/k6-$k6_version-$hash"
bin="$dir/k6"

if [ -x "$bin" ]; then
  log "k6 $k6_version with k6/x/mail already built"
  echo "$bin"
  exit 0
fi

# Only the module proxy: drop a trailing ",direct" (or "|direct") so that a
# module missing there fails instead of being fetched from its repository.
proxy="$(go env GOPROXY)"
proxy="${proxy%,direct}"
proxy="${proxy%|direct}"
case "$proxy" in
  ""|direct|off) die "GOPROXY=$(go env GOPROXY) names no module proxy" ;;
esac

log "building k6 $k6_version with k6/x/mail (a few minutes, once)"
start=$SECONDS
scratch="$(mktemp -d "$tools/.build-k6-XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
# GOWORK=off: the single-module build prunes k6's module graph (see
# loadtest/go.work for why the workspace needs a stand-in). Default build
# flags, so that the k6 packages `go test` compiles for the extension's
# tests come from the same build cache entries.
if ! (cd "$lt" && GOWORK=off GOPROXY="$proxy" GOFLAGS="-mod=readonly -buildvcs=false" \
  go build -o "$scratch/k6" ./cmd/k6 >&2); then
  die "go build of loadtest/cmd/k6 failed"
fi
"$scratch/k6" version 2>/dev/null | grep -q 'k6/x/mail' || die "the built k6 does not list k6/x/mail"
mkdir -p "$dir"
mv -f "$scratch/k6" "$bin"
log "built $bin in $((SECONDS - start))s"
echo "$bin"
