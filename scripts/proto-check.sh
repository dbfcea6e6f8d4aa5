#!/usr/bin/env bash
# Fails when the checked-in generated code differs from what `make proto`
# produces.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/proto.sh
if [ -n "$(git status --porcelain -- proto/)" ]; then
  git status --short -- proto/ >&2
  echo "generated protobuf code is out of date: run 'make proto' and commit" >&2
  exit 1
fi
