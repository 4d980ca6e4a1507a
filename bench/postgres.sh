#!/bin/bash
# bench/postgres.sh - load healthd's postgres check and count what it costs the database.
#
# Run by hand, as root (initdb runs as the postgres user), after building:
#     meson setup build && ninja -C build && bench/postgres.sh
#
# Starts a throwaway PostgreSQL cluster (temp directory, 127.0.0.1, fsync off,
# autovacuum off so that only healthd commits in the bench database) and a
# healthd with one check "db", then runs
#     wrk -t2 -c256 -d10s 'http://127.0.0.1:PORT/health/?checks=db'
# and reports requests/s, the check runs healthd started, the queries the
# database executed and the backends healthd used. Expect: backends 1 and
# queries far fewer than requests (single flight: concurrent requests share
# one run).
#
# Queries are counted from the server's own statement log (log_statement =
# all), which is exact. pg_stat_database.xact_commit is shown too, but
# PostgreSQL 15 undercounts it for a session that runs nothing but SELECT 1:
# pgstat_report_stat() returns early when no table, WAL or SLRU statistics
# are pending, and the commit counter is not among them.
#
# Environment: HEALTHD_BIN, HEALTHD_PLUGIN_DIR (default: build/), DURATION (10s),
# THREADS (2), CONNECTIONS (256). Everything is stopped and removed on exit.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
healthd=${HEALTHD_BIN:-$root/build/core/healthd}
plugins=${HEALTHD_PLUGIN_DIR:-$root/build/plugins}
duration=${DURATION:-10s}
threads=${THREADS:-2}
connections=${CONNECTIONS:-256}
app=healthd-bench

die() { echo "bench/postgres.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (initdb runs as the postgres user)"
[ -x "$healthd" ] || die "no healthd at $healthd; build first or set HEALTHD_BIN"
[ -e "$plugins/postgres.so" ] || die "no postgres.so in $plugins; set HEALTHD_PLUGIN_DIR"
if ! command -v wrk >/dev/null; then
	apt-get install -y wrk >/dev/null || die "wrk is missing and apt-get install wrk failed"
fi
pgbin=$(pg_config --bindir 2>/dev/null || true)
[ -x "$pgbin/initdb" ] || pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$pgbin/initdb" ] || die "no PostgreSQL server binaries; apt-get install postgresql"

tmp=$(mktemp -d /tmp/healthd-bench-pg.XXXXXX)
healthd_pid=
cleanup() {
	set +e # every step runs, whatever the one before it returned
	if [ -n "$healthd_pid" ]; then
		kill "$healthd_pid" 2>/dev/null
		wait "$healthd_pid" 2>/dev/null
	fi
	if [ -e "$tmp/data/postmaster.pid" ]; then
		runuser -u postgres -- "$pgbin/pg_ctl" stop -D "$tmp/data" -m immediate >/dev/null 2>&1 || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

chown postgres: "$tmp"
chmod 700 "$tmp"
as_pg() { runuser -u postgres -- "$@"; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
sql() { "$pgbin/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$tmp" -p "$port" -U postgres -d postgres -c "$1"; }

port=$(free_port)
password=bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
as_pg "$pgbin/initdb" -D "$tmp/data" -U postgres -E UTF8 --locale=C --no-sync \
	--auth-local=trust --auth-host=scram-sha-256 >/dev/null
cat >"$tmp/data/postgresql.auto.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$tmp'
fsync = off
autovacuum = off
log_connections = on
log_statement = 'all'
EOF
as_pg "$pgbin/pg_ctl" start -D "$tmp/data" -l "$tmp/server.log" -w -t 60 >/dev/null
sql "CREATE ROLE bench LOGIN PASSWORD '$password'" >/dev/null
sql "CREATE DATABASE bench OWNER bench" >/dev/null

cat >"$tmp/healthd.json" <<EOF
{"checks": [{"name": "db", "plugin": "postgres", "timeout_ms": 2000,
  "conninfo": "host=127.0.0.1 port=$port dbname=bench user=bench password=$password application_name=$app"}]}
EOF
: >"$tmp/healthd.log"
"$healthd" --listen 127.0.0.1:0 --plugin-dir "$plugins" --config "$tmp/healthd.json" \
	--no-url-secret 2>"$tmp/healthd.log" &
healthd_pid=$!
hport=
for _ in $(seq 100); do
	hport=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$tmp/healthd.log" | head -1)
	[ -n "$hport" ] && grep -q " ready: " "$tmp/healthd.log" && break
	kill -0 "$healthd_pid" 2>/dev/null || { cat "$tmp/healthd.log" >&2; die "healthd exited"; }
	sleep 0.1
done
[ -n "$hport" ] || die "healthd did not listen within 10 s"
url="http://127.0.0.1:$hport/health/?checks=db"

metric_runs() {
	/usr/bin/python3 - "$hport" <<'EOF'
import sys, urllib.request
body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=10).read().decode()
print(next(int(float(l.split()[-1])) for l in body.splitlines()
           if l.startswith('healthd_check_runs_total{check="db"} ')))
EOF
}
commits() { sql "SELECT xact_commit FROM pg_stat_database WHERE datname = 'bench'"; }

# Counted from before healthd's first connection to the bench database, so the
# warm-up request below is included in both queries and runs.
commits_before=$(commits)
runs_before=$(metric_runs)
status=$(/usr/bin/python3 -c "import urllib.request as u; print(u.urlopen('$url', timeout=10).status)")
[ "$status" = 200 ] || die "warm-up request answered $status"

echo "wrk -t$threads -c$connections -d$duration '$url'"
wrk -t"$threads" -c"$connections" -d"$duration" "$url" | tee "$tmp/wrk.txt"

runs_after=$(metric_runs)
# A busy backend publishes its counters when it next goes idle, but no sooner
# than 10 s (PGSTAT_IDLE_INTERVAL) after a flush less than 1 s old.
echo "waiting 12 s for the server's statistics"
sleep 12
commits_after=$(commits)
requests=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$tmp/wrk.txt")
rps=$(sed -n 's/^Requests\/sec: *//p' "$tmp/wrk.txt")
non2xx=$(sed -n 's/^ *Non-2xx or 3xx responses: *//p' "$tmp/wrk.txt")
backends_now=$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$app'")
backends_ever=$(grep -c "connection authorized: user=bench .*application_name=$app" "$tmp/server.log" || true)

echo
echo "requests:          $requests (${rps} req/s, non-2xx: ${non2xx:-0})"
echo "check runs:        $((runs_after - runs_before)) (healthd_check_runs_total, warm-up included)"
queries=$(grep -c 'statement: SELECT 1$' "$tmp/server.log" || true)
echo "queries executed:  $queries (SELECT 1 in the server's statement log, warm-up included)"
echo "xact_commit delta: $((commits_after - commits_before)) (pg_stat_database, db bench; undercounts, see above)"
echo "backends:          $backends_ever connected during the whole run, $backends_now open now"
