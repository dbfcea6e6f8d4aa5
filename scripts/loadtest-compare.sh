#!/usr/bin/env bash
# Runs the k6 scenarios of loadtest/scripts against mailstore and against
# Dovecot, one after the other on this machine, and rewrites the
# "k6 scenarios against Dovecot" section of docs/benchmarks.md with tables
# of ratios (mailstore / Dovecot) and PNG charts (docs/img/).
#
#   scripts/loadtest-compare.sh                         # as `make loadtest-compare` does
#   SCENARIOS="login-storm big-mail" DURATION=1m scripts/loadtest-compare.sh
#
# mailstore runs as scripts/loadtest.sh starts it (Redis, versitygw, 2
# metadata, 2 blob, 2 IMAP, 2 POP3 and 1 LMTP processes), a fresh stack for
# each scenario. Dovecot (installed from Debian's packages when missing:
# dovecot-core, -imapd, -pop3d, -lmtpd) runs as a private instance from a
# configuration written here: its own directories and loopback ports,
# never /etc/dovecot; maildir with mail_fsync=always (durable, as
# mailstore is); the same users, each with the same argon2id hash
# (`mailctl password hash`: Dovecot's {ARGON2ID} scheme reads it), so a
# login costs both servers the same; plaintext auth on loopback without
# TLS, as on the mailstore side; no auth cache (mailstore has none);
# limits raised so that 100 sessions of one user from one address work.
# A fresh Dovecot for each scenario. As root, mail belongs to nobody
# (Dovecot refuses uid 0).
#
# Environment: SCENARIOS (default: every script but smoke), DURATION
# (30s), USERS (10), KEEP=1 keeps the run directory (k6 points, logs).
# A threshold that fails in a run is recorded (the k6 exit status is in
# the tables), not fatal. Every run is bounded by timeout(1).
set -euo pipefail

log() { echo "loadtest-compare: $*" >&2; }
die() { log "$*"; exit 1; }

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
duration="${DURATION:-30s}"
users_n="${USERS:-10}"
password="loadtest-secret"
scenarios="${SCENARIOS:-$(cd loadtest/scripts && ls ./*.js | sed 's|^\./||; s|\.js$||' | grep -v '^smoke$' | tr '\n' ' ')}"

to_s() { case "$1" in *ms) echo 1 ;; *s) echo "${1%s}" ;; *m) echo $((${1%m} * 60)) ;; *h) echo $((${1%h} * 3600)) ;; *) echo "$1" ;; esac; }
limit=$(($(to_s "$duration") + 300))

# --- tools -------------------------------------------------------------------
if ! command -v dovecot >/dev/null || ! command -v doveadm >/dev/null ||
  [ ! -x /usr/lib/dovecot/imap ] || [ ! -x /usr/lib/dovecot/pop3 ] || [ ! -x /usr/lib/dovecot/lmtp ]; then
  log "installing dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  # The package may try to start the system's Dovecot; this script never
  # uses it.
  timeout 600 $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive timeout 600 $sudo apt-get install -y -qq \
    dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd >/dev/null
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/loadtest-compare-XXXXXX")"
# Dovecot's auth and mail processes (unprivileged users) reach their files
# in here.
chmod 0711 "$work"
out="$work/runs"
mkdir -p "$out" "$work/bin"
log "building k6 and mailctl"
k6="$(scripts/loadtest-build.sh)"
GOWORK= go build -o "$work/bin/" ./cmd/mailctl

dovecot_dir=""
stop_dovecot() {
  [ -n "$dovecot_dir" ] || return 0
  timeout 20 doveadm -c "$dovecot_dir/dovecot.conf" stop 2>/dev/null || true
  local pid=""
  [ -f "$dovecot_dir/run/master.pid" ] && pid=$(cat "$dovecot_dir/run/master.pid")
  for _ in $(seq 100); do
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  dovecot_dir=""
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_dovecot
  if [ "${KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
    log "run directory kept: $work"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

used_ports=" "
free_port() {
  local p
  for _ in $(seq 200); do
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

users=()
for n in $(seq "$users_n"); do users+=("user$n@example.com"); done
user_list="$(IFS=,; echo "${users[*]}")"
hash="$(printf '%s\n' "$password" | "$work/bin/mailctl" password hash --password-stdin)"

# start_dovecot writes a private configuration and starts Dovecot on
# fresh ports: imap_port, pop3_port, lmtp_port.
start_dovecot() {
  local dir="$work/dovecot-$1"
  mkdir -p "$dir/run" "$dir/state" "$dir/mail"
  local mail_uid mail_gid extra=""
  if [ "$(id -u)" -eq 0 ]; then
    mail_uid=$(id -u nobody)
    mail_gid=$(id -g nobody)
    chmod 0711 "$dir"
    chown "$mail_uid:$mail_gid" "$dir/mail"
  else
    mail_uid=$(id -u)
    mail_gid=$(id -g)
    extra="default_internal_user = $(id -un)
default_login_user = $(id -un)
default_internal_group = $(id -gn)
service anvil {
  chroot =
}
service imap-login {
  chroot =
}
service pop3-login {
  chroot =
}
service auth-worker {
  user = $(id -un)
}"
  fi
  : >"$dir/users"
  for u in "${users[@]}"; do
    echo "$u:{ARGON2ID}$hash:$mail_uid:$mail_gid::$dir/mail/$u::" >>"$dir/users"
  done
  imap_port=$(free_port)
  pop3_port=$(free_port)
  lmtp_port=$(free_port)
  cat >"$dir/dovecot.conf" <<EOF
# Private instance for scripts/loadtest-compare.sh; nothing from /etc/dovecot.
instance_name = mailstore-compare-$imap_port
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
protocols = imap pop3 lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
mail_fsync = always
postmaster_address = postmaster@example.com
default_process_limit = 1000
default_client_limit = 10000
default_vsz_limit = 1G
mail_max_userip_connections = 1000
passdb {
  driver = passwd-file
  args = $dir/users
}
userdb {
  driver = passwd-file
  args = $dir/users
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $imap_port
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $pop3_port
  }
  inet_listener pop3s {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $lmtp_port
  }
}
protocol imap {
  mail_max_userip_connections = 1000
}
protocol pop3 {
  mail_max_userip_connections = 1000
}
$extra
EOF
  dovecot -c "$dir/dovecot.conf"
  dovecot_dir="$dir"
  local p
  for p in "$imap_port" "$pop3_port" "$lmtp_port"; do
    for _ in $(seq 100); do
      (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break
      sleep 0.1
    done
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { tail -n 20 "$dir/dovecot.log" >&2; die "dovecot does not listen on $p"; }
  done
}

# record SERVER SCENARIO EXIT
record() { printf 'exit=%s\n' "$3" >"$out/$1-$2.run"; }

for sc in $scenarios; do
  [ -f "loadtest/scripts/$sc.js" ] || die "no scenario loadtest/scripts/$sc.js"

  log "$sc: mailstore for $duration"
  set +e
  DURATION="$duration" USERS="$users_n" MAIL_PASSWORD="$password" \
    K6_ARGS="--out json=$out/mailstore-$sc.json.gz" \
    timeout --kill-after=30s "$limit" scripts/loadtest.sh "$sc" >"$work/mailstore-$sc.log" 2>&1
  rc=$?
  set -e
  record mailstore "$sc" "$rc"
  log "$sc: mailstore k6 exit $rc"
  [ -s "$out/mailstore-$sc.json.gz" ] || { tail -n 30 "$work/mailstore-$sc.log" >&2; die "$sc: no k6 output from the mailstore run"; }

  log "$sc: dovecot for $duration"
  start_dovecot "$sc"
  set +e
  timeout --signal=INT --kill-after=30s "$limit" "$k6" run --no-usage-report --no-color --quiet \
    -e MAIL_IMAP="127.0.0.1:$imap_port" -e MAIL_POP3="127.0.0.1:$pop3_port" -e MAIL_LMTP="127.0.0.1:$lmtp_port" \
    -e MAIL_USERS="$user_list" -e MAIL_PASSWORD="$password" -e DURATION="$duration" \
    --out "json=$out/dovecot-$sc.json.gz" "loadtest/scripts/$sc.js" >"$work/dovecot-$sc.log" 2>&1
  rc=$?
  set -e
  record dovecot "$sc" "$rc"
  log "$sc: dovecot k6 exit $rc"
  [ -s "$out/dovecot-$sc.json.gz" ] || { tail -n 30 "$work/dovecot-$sc.log" >&2; die "$sc: no k6 output from the Dovecot run"; }
  stop_dovecot
done

# --- the report ----------------------------------------------------------------
mkdir -p docs/img
section="$work/section.md"
(cd loadtest && GOWORK= go run ./cmd/report -in "$out" -img "$root/docs/img" -link img -out "$section")
cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
{
  echo "<!-- loadtest-compare:begin (written by scripts/loadtest-compare.sh; edits here are lost) -->"
  echo "## k6 scenarios against Dovecot"
  echo
  echo "\`make loadtest-compare\` on $(date -u +%Y-%m-%d): each scenario of loadtest/scripts for $duration with $users_n users,"
  echo "first against mailstore (scripts/loadtest.sh: 2 IMAP, 2 POP3, 1 LMTP gateways, 2 metadata and 2 blob"
  echo "services, Redis, versitygw on the local disk), then against Dovecot $(dovecot --version | cut -d' ' -f1)"
  echo "(maildir, mail_fsync=always, the same argon2id password hashes), on one machine:"
  echo "$(nproc) cores ($cpu), mailstore at $(git rev-parse --short HEAD)."
  echo "k6 itself runs on the same cores. Throughput ratios above 1 and latency ratios below 1 favour mailstore."
  echo "Latencies are of successful commands; k6 exit status 99 means a threshold of the scenario failed."
  echo
  cat "$section"
  echo "<!-- loadtest-compare:end -->"
} >"$work/new-section.md"
awk -v new="$work/new-section.md" '
  /^<!-- loadtest-compare:begin/ { while ((getline l < new) > 0) print l; skip = 1; done = 1; next }
  /^<!-- loadtest-compare:end/ { skip = 0; next }
  !skip { print }
  END { if (!done) { print ""; while ((getline l < new) > 0) print l } }
' docs/benchmarks.md >"$work/benchmarks.md"
cp "$work/benchmarks.md" docs/benchmarks.md
log "docs/benchmarks.md and docs/img/loadtest-*.png written"
