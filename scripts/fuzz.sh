#!/usr/bin/env bash
# Runs every fuzz target of the root module for ${FUZZTIME:-10s} each, one
# `go test -fuzz` per target (Go fuzzes one target per run), and stops at
# the first failure. Plain `go test` already replays each target's seeds
# and its checked-in corpus (testdata/fuzz/<FuzzName>/); this searches for
# new inputs. A crasher is written by go test to the package's
# testdata/fuzz/<FuzzName>/: fix the cause and check the file in, and it
# is a regression input from then on.
#
#   FUZZTIME=45s scripts/fuzz.sh          # longer runs
#   scripts/fuzz.sh ./pkg/mime            # only the targets under a path
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-10s}"
roots=("${@:-.}")

# "<package dir> <FuzzName>" for every target, outside the other modules
# (loadtest/, proto/) of the workspace.
targets=$(grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' "${roots[@]}" \
  | grep -v -E '^(\./)?(loadtest|proto)/' \
  | while read -r f; do
      dir=$(dirname "$f")
      grep -o -E '^func Fuzz[A-Za-z0-9_]*' "$f" | sed "s|^func ||; s|^|./${dir#./} |"
    done | sort -u)
if [ -z "$targets" ]; then
  echo "fuzz.sh: no fuzz targets under ${roots[*]}" >&2
  exit 1
fi

n=0
start=$SECONDS
while read -r pkg name; do
  n=$((n + 1))
  echo "--- fuzz $pkg $name for $fuzztime"
  corpus="$pkg/testdata/fuzz/$name"
  before=$( (ls "$corpus" 2>/dev/null || true) | wc -l)
  for attempt in 1 2; do
    out=$(mktemp)
    if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" 2>&1 | tee "$out"; then
      rm -f "$out"
      break
    fi
    # Go's fuzzing engine sometimes reports "context deadline exceeded"
    # when -fuzztime ends while a slow target (a whole session over a
    # connection) is mid-input, without any crasher: run that target
    # once more. A crasher file always fails.
    after=$( (ls "$corpus" 2>/dev/null || true) | wc -l)
    if [ "$attempt" -eq 1 ] && [ "$after" -eq "$before" ] && grep -q '^    context deadline exceeded$' "$out"; then
      echo "fuzz.sh: $name stopped by the engine's deadline without a crasher; running it again" >&2
      rm -f "$out"
      continue
    fi
    rm -f "$out"
    echo "fuzz.sh: $name in $pkg failed; a crasher, if any, is in $corpus/" >&2
    exit 1
  done
done <<< "$targets"
echo "fuzz.sh: $n targets fuzzed for $fuzztime each in $((SECONDS - start))s"
