#!/usr/bin/env bash
# Regenerates the Go code of every .proto under proto/ with protoc and the
# pinned protoc-gen-go and protoc-gen-go-grpc. The output is checked in;
# `make proto` followed by `git diff --exit-code` must show no change.
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2

tools="${MAILSTORE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/mailstore-tools}"
bin="$tools/protoc-gen-$PROTOC_GEN_GO_VERSION-$PROTOC_GEN_GO_GRPC_VERSION"
if [ ! -x "$bin/protoc-gen-go" ] || [ ! -x "$bin/protoc-gen-go-grpc" ]; then
  mkdir -p "$bin"
  GOBIN="$bin" GOWORK=off go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
  GOBIN="$bin" GOWORK=off go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"
fi
if ! command -v protoc >/dev/null; then
  echo "proto: protoc not found; install Debian's protobuf-compiler" >&2
  exit 1
fi

cd proto
files=$(find mailstore -name '*.proto' | sort)
PATH="$bin:$PATH" protoc -I . \
  --go_out=. --go_opt=paths=source_relative \
  --go-grpc_out=. --go-grpc_opt=paths=source_relative \
  $files
