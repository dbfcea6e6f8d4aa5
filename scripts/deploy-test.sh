#!/usr/bin/env bash
# Runs the offline tests of the packaging (deploy/test, its own Go module):
# helm lint and helm template of deploy/helm/mailstore for several value
# sets, the schema's rejections, kustomize builds of deploy/k8s, and the
# Dockerfile's promises. Every rendered object is decoded strictly into the
# Kubernetes API types. Needs only Go; no cluster and no Docker daemon.
#
#   scripts/deploy-test.sh            # as `make test` does
#   scripts/deploy-test.sh -run Helm  # extra arguments go to `go test`
#
# helm is built with `go install` at the pinned version into
# ${MAILSTORE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/mailstore-tools}/helm-VERSION,
# once (a few minutes cold), like scripts/tools.sh does for the S3 servers.
# While it builds, the test binary and the static mailstore are compiled.
set -euo pipefail

# Keep in step with helmVersion in deploy/test/tools_test.go.
HELM_PKG=helm.sh/helm/v4/cmd/helm
HELM_VERSION=v4.3.1

log() { echo "deploy-test: $*" >&2; }
die() { log "$*"; exit 1; }

command -v go >/dev/null || die "go not found on PATH"
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="${MAILSTORE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/mailstore-tools}"
mkdir -p "$tools"
helm_dir="$tools/helm-$HELM_VERSION"
helm="$helm_dir/helm"

# build_helm installs helm into a scratch directory and moves it into
# place, so an interrupted build never looks installed.
build_helm() {
  local scratch
  scratch="$(mktemp -d "$tools/.build-helm-XXXXXX")"
  if ! GOBIN="$scratch" GOWORK=off go install "$HELM_PKG@$HELM_VERSION" >&2; then
    rm -rf "$scratch"
    return 1
  fi
  mkdir -p "$helm_dir"
  mv -f "$scratch/helm" "$helm"
  rm -rf "$scratch"
}

start=$SECONDS
helm_pid=
if [ -x "$helm" ]; then
  log "helm $HELM_VERSION already installed"
else
  log "building helm $HELM_VERSION (a few minutes, once)"
  build_helm &
  helm_pid=$!
fi

# Meanwhile: compile the tests, and the static binaries the tests build
# (same flags, so the tests find them in the build cache).
warm_dir="$(mktemp -d)"
trap 'rm -rf "$warm_dir"' EXIT
(cd "$root" && CGO_ENABLED=0 GOWORK= GOFLAGS=-buildvcs=false go build -trimpath -o "$warm_dir/" ./cmd/mailstore ./cmd/mailctl) &
warm_pid=$!
(cd "$root/deploy/test" && go test -count=1 -run '^$' ./... >/dev/null) || die "deploy/test does not compile"
# A failure here shows again, with its output, in TestDockerfile.
wait "$warm_pid" || log "go build ./cmd/mailstore ./cmd/mailctl failed; the tests will say more"
if [ -n "$helm_pid" ]; then
  wait "$helm_pid" || die "building helm $HELM_VERSION failed"
  log "built helm $HELM_VERSION"
fi
log "tools ready after $((SECONDS - start))s"

cd "$root/deploy/test"
# The root's `go vet ./...` does not see this module.
go vet ./...
MAILSTORE_HELM="$helm" MAILSTORE_REQUIRE_TOOLS=1 go test -count=1 -timeout 10m "$@" ./...
