#!/usr/bin/env bash
# bench-lmtp-dovecot.sh: LMTP delivery benchmarks of the gateway side by
# side with Dovecot's LMTP on the same machine, in one `go test -bench`
# run (services/lmtpgw/bench_test.go; figures in docs/benchmarks.md).
#
# It installs Dovecot's LMTP server from Debian if missing (dovecot-core,
# dovecot-lmtpd), starts a private instance from a self-contained
# configuration in a temporary directory (its own base_dir, state, log,
# a free loopback port; never the system's /etc/dovecot or a system
# instance), with recipients user0..user9@example.com in maildirs and
# mail_fsync = always (durable, as the gateway's bbolt and fsblob are),
# runs BenchmarkDeliver against both, then stops it and removes the
# directory.
#
# Environment: BENCHTIME (default 3s) is go test's -benchtime; GO (default
# go). Extra arguments go to `go test` (e.g. -count 2, -cpuprofile f).
# Dovecot refuses to deliver mail as root, so when run as root the
# mailboxes belong to the unprivileged user nobody.
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
BENCHTIME=${BENCHTIME:-3s}

log() { echo "bench-lmtp: $*" >&2; }

# Install Dovecot's LMTP server if missing.
if ! command -v dovecot >/dev/null || ! command -v doveadm >/dev/null || [ ! -x /usr/lib/dovecot/lmtp ]; then
	log "installing dovecot-core dovecot-lmtpd"
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	# The package may try to start the system's Dovecot; this script never
	# uses it (its own configuration, directories and port).
	timeout 600 $sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive timeout 600 $sudo apt-get install -y -qq dovecot-core dovecot-lmtpd >/dev/null
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/bench-lmtp-dovecot.XXXXXX")
conf="$dir/dovecot.conf"
started=""

cleanup() {
	local rc=$?
	if [ -n "$started" ]; then
		timeout 20 doveadm -c "$conf" stop 2>/dev/null || true
		# Wait for the master to go; kill it (by its own pid file) if it
		# does not.
		local pid=""
		[ -f "$dir/run/master.pid" ] && pid=$(cat "$dir/run/master.pid")
		for _ in $(seq 100); do
			[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
			log "dovecot did not stop; killing $pid"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	if [ "$rc" -ne 0 ] && [ -f "$dir/dovecot.log" ]; then
		log "dovecot log (last lines):"
		tail -n 20 "$dir/dovecot.log" >&2 || true
	fi
	rm -rf "$dir"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free loopback port: nothing answers on it.
port=""
for _ in $(seq 50); do
	p=$((20000 + RANDOM % 40000))
	if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		port=$p
		break
	fi
done
[ -n "$port" ] || { log "no free port found"; exit 1; }

# The mail user: ourselves, or nobody when root (Dovecot will not deliver
# as uid 0, and its passwd-file refuses uid 0).
if [ "$(id -u)" -eq 0 ]; then
	mail_user=nobody
	mail_uid=$(id -u nobody)
	mail_gid=$(id -g nobody)
	chmod 0711 "$dir"
else
	mail_user=$(id -un)
	mail_group=$(id -gn)
	mail_uid=$(id -u)
	mail_gid=$(id -g)
fi
mkdir -p "$dir/run" "$dir/state" "$dir/mail"
[ "$(id -u)" -ne 0 ] || chown "$mail_uid:$mail_gid" "$dir/mail"

: >"$dir/users"
for i in $(seq 0 9); do
	echo "user$i@example.com:{PLAIN}unused:$mail_uid:$mail_gid::$dir/mail/user$i::" >>"$dir/users"
done

cat >"$conf" <<EOF
# Private instance for scripts/bench-lmtp-dovecot.sh; nothing from /etc/dovecot.
instance_name = mailstore-bench-$port
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
protocols = lmtp
listen = 127.0.0.1
ssl = no
mail_location = maildir:~/Maildir
# Durable delivery: fsync every written file, like the gateway's fsblob and
# bbolt commits.
mail_fsync = always
passdb {
  driver = passwd-file
  args = $dir/users
}
userdb {
  driver = passwd-file
  args = $dir/users
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $port
  }
}
EOF
if [ "$(id -u)" -ne 0 ]; then
	# Dovecot as an ordinary user: every service runs as that user.
	cat >>"$conf" <<EOF
default_internal_user = $mail_user
default_login_user = $mail_user
default_internal_group = $mail_group
service anvil {
  chroot =
}
service auth-worker {
  user = $mail_user
}
EOF
fi

log "starting dovecot $(dovecot --version | cut -d' ' -f1) on 127.0.0.1:$port (config $conf, mail user $mail_user)"
dovecot -c "$conf"
started=1
for _ in $(seq 100); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		break
	fi
	sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { log "dovecot does not listen on $port"; exit 1; }

log "uptime: $(uptime)"
MAILSTORE_BENCH_DOVECOT_LMTP="127.0.0.1:$port" timeout 40m \
	"$GO" test -run '^$' -bench BenchmarkDeliver -benchtime "$BENCHTIME" -timeout 30m "$@" ./services/lmtpgw/
log "uptime: $(uptime)"
