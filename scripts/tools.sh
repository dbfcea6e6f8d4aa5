#!/usr/bin/env bash
# Makes sure the servers that the tests run against are installed, at pinned
# versions, and prints `export` lines naming them for internal/testenv:
#
#   eval "$(scripts/tools.sh)"            # as the Makefile does
#   eval "$(scripts/tools.sh --with-protoc)"  # also install protoc (make proto)
#
# versitygw and MinIO are built with `go install` into the cache directory
# ${MAILSTORE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/mailstore-tools}, one
# directory per version, so a pinned version is built once and a new pin is
# built beside the old one. redis-server and redis-cli (and protoc with
# --with-protoc) come from apt when missing. Needs only Go and apt on a fresh
# Debian machine. Progress goes to stderr; stdout holds only the exports.
set -euo pipefail

VERSITYGW_PKG=github.com/versity/versitygw/cmd/versitygw
VERSITYGW_VERSION=v1.8.0
MINIO_PKG=github.com/minio/minio
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c

log() { echo "tools: $*" >&2; }
die() { log "$*"; exit 1; }

with_protoc=0
for arg in "$@"; do
  case "$arg" in
    --with-protoc) with_protoc=1 ;;
    -h|--help)
      sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
      exit 0 ;;
    *) die "unknown argument $arg (want --with-protoc)" ;;
  esac
done

command -v go >/dev/null || die "go not found on PATH"

tools="${MAILSTORE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/mailstore-tools}"
mkdir -p "$tools"

# as_root runs a command as root, through sudo only when we are not root.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  else
    command -v sudo >/dev/null || die "need root or sudo to run: $*"
    sudo "$@"
  fi
}

# --- apt packages: redis-server (with redis-cli), swaks, protobuf-compiler -
apt_pkgs=()
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  apt_pkgs+=(redis-server)
fi
# swaks: an LMTP client the tests deliver with, as MTAs' admins do.
if ! command -v swaks >/dev/null; then
  apt_pkgs+=(swaks)
fi
if [ "$with_protoc" -eq 1 ] && ! command -v protoc >/dev/null; then
  apt_pkgs+=(protobuf-compiler)
fi
if [ "${#apt_pkgs[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null || die "missing ${apt_pkgs[*]} and apt-get is not available; install them by hand"
  log "installing ${apt_pkgs[*]} with apt-get"
  # apt may start redis-server as a system service on 6379; the tests never
  # use it, they start their own servers on free ports.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${apt_pkgs[@]}" >&2
fi
redis_server="$(command -v redis-server)" || die "redis-server still not found after install"
redis_cli="$(command -v redis-cli)" || die "redis-cli still not found after install"
if [ "$with_protoc" -eq 1 ]; then
  command -v protoc >/dev/null || die "protoc still not found after install"
fi

# --- Go-built servers: versitygw and MinIO, built in parallel -------------

# build NAME PKG VERSION installs PKG@VERSION as $tools/NAME-VERSION/NAME,
# unless it is already there. It builds into a scratch directory and moves
# the binary into place, so an interrupted build never looks installed.
build() {
  local name=$1 pkg=$2 version=$3
  local dir="$tools/$name-$version"
  if [ -x "$dir/$name" ]; then
    log "$name $version already installed"
    return 0
  fi
  log "building $name $version (this takes a few minutes)"
  local scratch
  scratch="$(mktemp -d "$tools/.build-$name-XXXXXX")"
  if ! GOBIN="$scratch" GOWORK=off go install "$pkg@$version" >&2; then
    rm -rf "$scratch"
    log "building $name $version failed"
    return 1
  fi
  mkdir -p "$dir"
  mv -f "$scratch/$name" "$dir/$name"
  rm -rf "$scratch"
  log "built $name $version"
}

build versitygw "$VERSITYGW_PKG" "$VERSITYGW_VERSION" &
versitygw_pid=$!
build minio "$MINIO_PKG" "$MINIO_VERSION" &
minio_pid=$!
failed=0
wait "$versitygw_pid" || failed=1
wait "$minio_pid" || failed=1
[ "$failed" -eq 0 ] || die "could not build the S3 test servers (see above)"

# --- the exports ----------------------------------------------------------
printf 'export MAILSTORE_REDIS_SERVER=%q\n' "$redis_server"
printf 'export MAILSTORE_REDIS_CLI=%q\n' "$redis_cli"
printf 'export MAILSTORE_VERSITYGW=%q\n' "$tools/versitygw-$VERSITYGW_VERSION/versitygw"
printf 'export MAILSTORE_MINIO=%q\n' "$tools/minio-$MINIO_VERSION/minio"
