#!/usr/bin/env bash
# Runs one k6 scenario of loadtest/scripts against a local multi-process
# mailstore, so that a load test needs nothing but this repository:
#
#   scripts/loadtest.sh office-day              # as `make loadtest SCENARIO=office-day` does
#   DURATION=2m USERS=20 scripts/loadtest.sh shared-account
#
# The stack, every listener on a free 127.0.0.1 port and every file in one
# temporary directory: a redis-server (MAILSTORE_REDIS_SERVER or PATH), a
# versitygw S3 server on a posix directory (MAILSTORE_VERSITYGW, else what
# scripts/tools.sh installs), and mailstore built from this tree as 2
# metadata (Redis), 2 blob (S3), 2 imap, 2 pop3 and 1 lmtp processes, the
# gateways spread over the metadata and blob processes. USERS accounts
# (default 10) user1@example.com ... are added with mailctl, then k6
# (scripts/loadtest-build.sh) runs the scenario with MAIL_IMAP (both IMAP
# gateways, comma-separated), MAIL_POP3, MAIL_LMTP, MAIL_USERS,
# MAIL_PASSWORD and DURATION (default 30s); extra K6_ARGS go to `k6 run`.
# Everything is stopped on exit, and k6 is bounded by DURATION plus
# LOADTEST_GRACE (default 5m). The exit status is k6's: non-zero when a
# threshold failed. KEEP_LOGS=1 keeps the temporary directory (process logs).
set -euo pipefail

log() { echo "loadtest: $*" >&2; }
die() { log "$*"; exit 1; }

root="$(cd "$(dirname "$0")/.." && pwd)"
scenario="${1:-${SCENARIO:-}}"
[ -n "$scenario" ] || die "usage: scripts/loadtest.sh SCENARIO (one of: $(cd "$root/loadtest/scripts" && ls ./*.js | sed 's|^\./||; s|\.js$||' | tr '\n' ' '))"
script="$root/loadtest/scripts/$scenario.js"
[ -f "$script" ] || die "no scenario $script"

duration="${DURATION:-30s}"
users_n="${USERS:-10}"
password="${MAIL_PASSWORD:-loadtest-secret}"
grace="${LOADTEST_GRACE:-5m}"

command -v go >/dev/null || die "go not found on PATH"
redis_server="${MAILSTORE_REDIS_SERVER:-$(command -v redis-server || true)}"
[ -x "$redis_server" ] || die "no redis-server (set MAILSTORE_REDIS_SERVER or put it on PATH)"
if [ -z "${MAILSTORE_VERSITYGW:-}" ]; then
  eval "$("$root/scripts/tools.sh")"
fi
[ -x "$MAILSTORE_VERSITYGW" ] || die "no versitygw at $MAILSTORE_VERSITYGW"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/mailstore-loadtest-XXXXXX")"
pids=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # Gateways first (they drain), then services, then the servers.
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "${KEEP_LOGS:-0}" = 1 ]; then
    log "logs kept in $tmp"
  else
    rm -rf "$tmp"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# free_port prints a loopback TCP port nothing listens on and that this
# script has not handed out yet.
used_ports=" "
free_port() {
  local p
  for _ in $(seq 200); do
    # Below the ephemeral range (32768+), where outgoing connections
    # between the processes could take a port before its listener binds.
    p=$((10000 + RANDOM % 22000))
    case "$used_ports" in *" $p "*) continue ;; esac
    if [ -z "$(ss -Htln "sport = :$p" 2>/dev/null)" ]; then
      used_ports+="$p "
      echo "$p"
      return 0
    fi
  done
  die "no free port found"
}
addr() { echo "127.0.0.1:$(free_port)"; }

# wait_http waits for URL to answer 200, or the process PID to exit.
wait_http() {
  local name=$1 pid=$2 url=$3
  for _ in $(seq 900); do
    curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { tail -n 30 "$tmp/$name.log" >&2; die "$name exited before it was ready"; }
    sleep 0.1
  done
  tail -n 30 "$tmp/$name.log" >&2
  die "$name not ready after 90s"
}

# --- build: mailstore, mailctl and k6 at once ----------------------------
start=$SECONDS
log "building mailstore, mailctl and k6"
"$root/scripts/loadtest-build.sh" >"$tmp/k6.path" 2>"$tmp/k6-build.log" &
k6_build=$!
(cd "$root" && GOWORK= go build -o "$tmp/bin/" ./cmd/mailstore ./cmd/mailctl) || die "go build ./cmd/mailstore ./cmd/mailctl failed"
wait "$k6_build" || { cat "$tmp/k6-build.log" >&2; die "scripts/loadtest-build.sh failed"; }
k6="$(cat "$tmp/k6.path")"
[ -x "$k6" ] || die "scripts/loadtest-build.sh printed no binary"

# --- redis-server -------------------------------------------------------
redis_port="$(free_port)"
mkdir -p "$tmp/redis"
"$redis_server" --bind 127.0.0.1 --port "$redis_port" --dir "$tmp/redis" --save "" --appendonly no \
  --protected-mode no --loglevel warning >"$tmp/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null && break
  sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null || die "redis-server did not start: $(cat "$tmp/redis.log")"

# --- versitygw (posix) ----------------------------------------------------
s3_access=mailstore-loadtest
s3_secret=mailstore-loadtest-secret
s3_region=us-east-1
s3_bucket=mailstore
s3_addr="$(addr)"
mkdir -p "$tmp/s3/$s3_bucket" # a posix backend's bucket is a directory
"$MAILSTORE_VERSITYGW" --access "$s3_access" --secret "$s3_secret" --region "$s3_region" \
  --port "$s3_addr" --quiet posix "$tmp/s3" >"$tmp/versitygw.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/${s3_addr%:*}/${s3_addr#*:}") 2>/dev/null && break
  sleep 0.1
done

# --- mailstore processes ----------------------------------------------------
# launch NAME [ENV=V ...] -- FLAGS...: starts one mailstore process with its
# own HTTP port (and its own LMTP port, which would otherwise default to a
# shared one) and queues it for ready_all, which waits for every /readyz.
pending=()
launch() {
  local name=$1
  shift
  local env=()
  while [ "$1" != "--" ]; do env+=("$1"); shift; done
  shift
  local http
  http="$(addr)"
  env ${env[@]+"${env[@]}"} "$tmp/bin/mailstore" -server.http-listen-address="$http" -log.format=text -log.level=warn \
    -server.drain-window=500ms -lmtp.listen-address="$(addr)" "$@" >"$tmp/$name.log" 2>&1 &
  pids+=($!)
  pending+=("$name $! http://$http/readyz")
}
ready_all() {
  local p
  for p in "${pending[@]}"; do
    # shellcheck disable=SC2086
    wait_http $p
  done
  pending=()
}

s3_env=("AWS_ACCESS_KEY_ID=$s3_access" "AWS_SECRET_ACCESS_KEY=$s3_secret")
s3_flags=(-blob.backend=s3 -blob.s3.endpoint="$s3_addr" -blob.s3.bucket="$s3_bucket"
  -blob.s3.region="$s3_region" -blob.s3.insecure=true -blob.s3.path-style=true)
blob=("$(addr)" "$(addr)")
meta=("$(addr)" "$(addr)")
for i in 0 1; do
  launch "blob-$i" "${s3_env[@]}" -- -target=blob -blob.listen-address="${blob[i]}" "${s3_flags[@]}"
done
ready_all
for i in 0 1; do
  launch "metadata-$i" -- -target=metadata -metadata.listen-address="${meta[i]}" -blob.address="${blob[i]}" \
    -metadata.backend=redis -metadata.redis.addrs="127.0.0.1:$redis_port" -metadata.redis.key-prefix=loadtest:
done
ready_all
imap=("$(addr)" "$(addr)")
pop3=("$(addr)" "$(addr)")
lmtp="$(addr)"
# Every virtual user connects from 127.0.0.1, so the per-IP bounds (25 by
# default, meant for real clients) and the per-account bound (100; the
# shared-account scenario has 100 sessions on one account) are lifted.
for i in 0 1; do
  backends=(-metadata.address="${meta[i]}" -blob.address="${blob[i]}")
  launch "imap-$i" -- -target=imap -imap.listen-address="${imap[i]}" "${backends[@]}" \
    -imap.max-connections-per-ip=0 -imap.max-connections-per-account=0
  # The POP3 gateways cross over, so each metadata process serves both protocols.
  backends=(-metadata.address="${meta[1 - i]}" -blob.address="${blob[1 - i]}")
  launch "pop3-$i" -- -target=pop3 -pop3.listen-address="${pop3[i]}" "${backends[@]}" -pop3.max-connections-per-ip=0
done
# The LMTP gateway names its own port: launch's default comes first and the last wins.
launch lmtp -- -target=lmtp -lmtp.listen-address="$lmtp" -metadata.address="${meta[1]}" -blob.address="${blob[0]}" \
  -lmtp.max-connections-per-ip=0
ready_all
log "stack ready after $((SECONDS - start))s: imap ${imap[*]}, pop3 ${pop3[*]}, lmtp $lmtp, metadata ${meta[*]}, blob ${blob[*]}, redis 127.0.0.1:$redis_port, s3 $s3_addr"

# --- accounts -------------------------------------------------------------
users=()
for n in $(seq "$users_n"); do
  u="user$n@example.com"
  users+=("$u")
  printf '%s\n' "$password" | "$tmp/bin/mailctl" -addr "${meta[n % 2]}" account add "$u" --password-stdin >/dev/null ||
    die "mailctl account add $u failed"
done
log "added ${#users[@]} accounts user1..user$users_n@example.com"

# --- k6 -------------------------------------------------------------------
user_list="$(IFS=,; echo "${users[*]}")"
log "running $scenario for $duration"
set +e
# shellcheck disable=SC2086
timeout --signal=INT --kill-after=30s "$(
  # DURATION plus grace, in seconds, for timeout(1).
  to_s() { case "$1" in *ms) echo 1 ;; *s) echo "${1%s}" ;; *m) echo $((${1%m} * 60)) ;; *h) echo $((${1%h} * 3600)) ;; *) echo "$1" ;; esac; }
  echo $(($(to_s "$duration") + $(to_s "$grace")))
)" "$k6" run --no-usage-report --no-color --quiet \
  -e MAIL_IMAP="$(IFS=,; echo "${imap[*]}")" -e MAIL_POP3="$(IFS=,; echo "${pop3[*]}")" -e MAIL_LMTP="$lmtp" \
  -e MAIL_USERS="$user_list" -e MAIL_PASSWORD="$password" -e DURATION="$duration" \
  ${K6_ARGS:-} "$script"
rc=$?
set -e
if [ "$rc" -ne 0 ]; then
  log "k6 exited with $rc (99: a threshold failed); process logs: KEEP_LOGS=1 keeps them"
  for f in "$tmp"/*.log; do
    if grep -qi 'level=error' "$f" 2>/dev/null; then
      log "errors in $(basename "$f"):"
      grep -i 'level=error' "$f" | tail -n 5 >&2
    fi
  done
fi
exit "$rc"
