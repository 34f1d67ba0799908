#!/usr/bin/env bash
# OpenDTU push load benchmark: builds the release server, and for each backend (SQLite in a
# temporary data directory, PostgreSQL in a fresh database) provisions a user, an API key and
# DTUS DTUs with two inverters each through the CLI, starts `serve` on a free 127.0.0.1 port and
# runs the load harness (benches/ingest_load.rs) at each concurrency (default: 1, 16 and 64),
# then stops the server with SIGTERM and prints the results. With DTUS above the concurrency,
# each connection pushes for several DTUs in turn (a larger fleet, each DTU's rows touched less
# often); SERVER_ARGS adds flags to `serve` (e.g. `--ingest-writers 2`).
#
# Usage: benches/ingest-load.sh [CONCURRENCY ...]
# Environment: DURATION (s per run, default 10), BACKENDS (default "sqlite postgres"),
# DTUS (default 64, at most 10000), SERVER_ARGS (default none), PG_ADMIN_URL (default
# $DEYEHARD_TEST_PG_URL or postgres://postgres@127.0.0.1:5432/postgres), CARGO_TARGET_DIR
# (default target).
# Exit status: 0 when every answer of every run was 2xx, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$#" -eq 0 ]; then
  set -- 1 16 64
fi
duration="${DURATION:-10}"
backends="${BACKENDS:-sqlite postgres}"
dtus="${DTUS:-64}"
pg_admin="${PG_ADMIN_URL:-${DEYEHARD_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}}"
target_dir="${CARGO_TARGET_DIR:-target}"
email="load@example.com"

echo "ingest-load: building the release server and the harness"
cargo build --release -p deyehard-server
cargo bench -p deyehard --bench ingest_load --no-run
server="$target_dir/release/deyehard-server"

work="$(mktemp -d)"
server_pid=""
database=""
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    wait "$server_pid" && echo "ingest-load: server stopped (exit 0)" ||
      echo "ingest-load: server exit status $?"
  fi
  server_pid=""
}
drop_database() {
  if [ -n "$database" ]; then
    psql "$pg_admin" -qtAc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null || true
  fi
  database=""
}
trap 'stop_server; drop_database; rm -rf "$work"' EXIT

status=0
for backend in $backends; do
  data="$work/$backend"
  mkdir -p "$data"
  case "$backend" in
    sqlite) unset DATABASE_URL ;;
    postgres)
      database="dh_load_$$"
      psql "$pg_admin" -qtAc "CREATE DATABASE $database" >/dev/null
      export DATABASE_URL="${pg_admin%/*}/$database"
      ;;
    *) echo "ingest-load: unknown backend $backend" >&2; exit 2 ;;
  esac
  echo "ingest-load: $backend: provisioning 1 user, 1 key, $dtus DTUs × 2 inverters"
  "$server" --data-dir "$data" user add --email "$email" --password "Load-Test-2026" --verified >/dev/null
  key="$("$server" --data-dir "$data" apikey create --user "$email" --name load)"
  # PostgreSQL takes the CLI processes in parallel; SQLite has one writer.
  jobs=1
  [ "$backend" = postgres ] && jobs=4
  for ((d = 0; d < dtus; d++)); do printf '1141%04d0000\n1141%04d0001\n' "$d" "$d"; done |
    xargs -P "$jobs" -I SERIAL "$server" --data-dir "$data" inverter add --user "$email" \
      --kind opendtu --serial SERIAL --name "Inverter SERIAL" --rated-power 800 --mppts 2 >/dev/null

  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
  # The limiter stays on, with a budget no run reaches: its cost is part of the measure.
  DEYEHARD_LOG=warn "$server" --data-dir "$data" serve --listen "127.0.0.1:$port" \
    --collector-listen off --ingest-rate-limit 100000000 ${SERVER_ARGS:-} \
    >"$work/server-$backend.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
      echo "ingest-load: the server exited; its log:" >&2
      cat "$work/server-$backend.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "ingest-load: $backend: server pid $server_pid on 127.0.0.1:$port"

  left=$#
  for c in "$@"; do
    # Each run pushes its own 30-day range, later than the previous run's (devices push in time
    # order), so every push is a new row; at most 40000 pushes × 60 s per DTU fit in it.
    from="$(date -u -d "$((left * 30)) days ago" +%Y-%m-%dT%H:%M:%SZ)"
    left=$((left - 1))
    INGEST_LOAD_KEY="$key" cargo bench -q -p deyehard --bench ingest_load -- \
      --addr "127.0.0.1:$port" --pid "$server_pid" --dtus "$dtus" --concurrency "$c" \
      --duration "$duration" --max-per-client 40000 --from "$from" --label "$backend" \
      | tee "$work/result-$backend-$c.txt" || status=1
  done
  stop_server
  drop_database
  sed 's/\x1b\[[0-9;]*m//g' "$work/server-$backend.log" | grep -E ' (WARN|ERROR) |panicked' \
    >"$work/problems-$backend.log" || true
  if [ -s "$work/problems-$backend.log" ]; then
    echo "ingest-load: $backend: $(wc -l <"$work/problems-$backend.log") warning/error lines in the server log, the first 10:"
    head -n 10 "$work/problems-$backend.log"
  fi
done

echo
echo "ingest-load: results"
cat "$work"/result-*.txt | grep -v '^{' || true
echo
cat "$work"/result-*.txt | grep '^{' || true
exit "$status"
