#!/usr/bin/env bash
# Collector load benchmark: builds the release collector, and for each backend starts it on a
# free 127.0.0.1 port with a temporary data directory (and, for PostgreSQL, a fresh database),
# runs the load harness (benches/collector_load.rs) for each logger count (default: 1000 and
# 10000), stops the collector with SIGTERM and prints the results.
#
# Usage: benches/collector-load.sh [N ...]
# Environment: DURATION (s, default 60), RAMP (s, 20), DATA_INTERVAL (s, 10),
# HEARTBEAT_INTERVAL (s, 30), REPLY_TIMEOUT (s, 5), CARGO_TARGET_DIR (default target),
# BACKENDS ("sqlite", "postgres" or both, space-separated; default sqlite), PG_URL (a server
# where this login may create databases, default postgres://postgres@127.0.0.1:5432/postgres;
# needs psql), CLAIMED (default 0; 1: before the runs, every logger is claimed by an inverter
# of one user through `deyehard-server`'s CLI, so that each data frame takes the readings path
# (decoded, written in a group commit with the energy upkeep) instead of the raw-frame path of
# unclaimed loggers; once the collector stopped, the readings stored are counted with
# `deyehard-server export` and must equal the data frames the harness sent).
# Exit status: 0 when every run kept all loggers and lost no frame (and, with CLAIMED=1, every
# data frame became a reading), 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$#" -eq 0 ]; then
  set -- 1000 10000
fi
duration="${DURATION:-60}"
ramp="${RAMP:-20}"
data_interval="${DATA_INTERVAL:-10}"
heartbeat_interval="${HEARTBEAT_INTERVAL:-30}"
reply_timeout="${REPLY_TIMEOUT:-5}"
target_dir="${CARGO_TARGET_DIR:-target}"
backends="${BACKENDS:-sqlite}"
pg_url="${PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
for backend in $backends; do
  case "$backend" in
    sqlite) ;;
    postgres) command -v psql >/dev/null || { echo "collector-load: postgres needs psql" >&2; exit 2; } ;;
    *) echo "collector-load: unknown backend $backend (sqlite, postgres)" >&2; exit 2 ;;
  esac
done

# The collector and the harness each hold one descriptor per logger.
max_n=0
for n in "$@"; do
  if [ "$n" -gt "$max_n" ]; then max_n="$n"; fi
done
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((max_n + 256)) ]; then
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  echo "collector-load: ulimit -n is now $(ulimit -n) for up to $max_n loggers"
fi

echo "collector-load: building the release collector and the harness"
cargo build --release -p deyehard-collector
claimed="${CLAIMED:-0}"
[ "$claimed" = 1 ] && cargo build --release -p deyehard-server
cargo bench -p deyehard --bench collector_load --no-run
collector="$target_dir/release/deyehard-collector"
server="$target_dir/release/deyehard-server"
email="collector-load@example.com"
serial_base=3900000000

work="$(mktemp -d)"
collector_pid=""
pg_db=""
env_args=()
stop_process() {
  if [ -n "$collector_pid" ] && kill -0 "$collector_pid" 2>/dev/null; then
    kill -TERM "$collector_pid"
    wait "$collector_pid" && echo "collector-load: collector stopped (exit 0)" ||
      echo "collector-load: collector exit status $?"
  fi
  collector_pid=""
}
stop_collector() {
  stop_process
  if [ -n "$pg_db" ]; then
    psql "$pg_url" -qAtc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null || true
    pg_db=""
  fi
}
trap 'stop_collector; rm -rf "$work"' EXIT

# Starts the collector on a free port with a fresh data directory (and database).
start_collector() {
  local backend="$1" database_url=""
  rm -rf "$work/data"
  if [ "$backend" = postgres ]; then
    pg_db="dh_bench_$$_$RANDOM"
    psql "$pg_url" -qAtc "CREATE DATABASE $pg_db" >/dev/null
    database_url="${pg_url%/*}/$pg_db"
  fi
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
  env_args=(-u DATABASE_URL)
  if [ -n "$database_url" ]; then env_args=(DATABASE_URL="$database_url"); fi
  if [ "$claimed" = 1 ]; then
    echo "collector-load: $backend: claiming $max_n loggers (1 user, 1 inverter each)"
    env "${env_args[@]}" "$server" --data-dir "$work/data" user add --email "$email" \
      --password "Load-Test-2026" --verified >/dev/null
    # PostgreSQL takes the CLI processes in parallel; SQLite has one writer.
    local jobs=1
    [ "$backend" = postgres ] && jobs=4
    seq "$serial_base" $((serial_base + max_n - 1)) |
      xargs -P "$jobs" -I LOGGER env "${env_args[@]}" "$server" --data-dir "$work/data" \
        inverter add --user "$email" --kind solarman --logger-serial LOGGER \
        --name "Logger LOGGER" >/dev/null
  fi
  env "${env_args[@]}" "$collector" --data-dir "$work/data" serve --listen "127.0.0.1:$port" \
    >"$work/collector-$backend.log" 2>&1 &
  collector_pid=$!
  echo "collector-load: $backend collector pid $collector_pid on 127.0.0.1:$port, data in $work/data"

  # Wait until the port accepts connections (or the collector dies).
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    if ! kill -0 "$collector_pid" 2>/dev/null; then
      echo "collector-load: the collector exited; its log:" >&2
      cat "$work/collector-$backend.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || {
    echo "collector-load: 127.0.0.1:$port does not accept connections after 10 s" >&2
    exit 1
  }
}

status=0
for backend in $backends; do
  start_collector "$backend"
  for n in "$@"; do
    echo "collector-load: $backend, $n loggers"
    cargo bench -p deyehard --bench collector_load -- \
      --addr "127.0.0.1:$port" --pid "$collector_pid" --loggers "$n" \
      --duration "$duration" --ramp "$ramp" --data-interval "$data_interval" \
      --heartbeat-interval "$heartbeat_interval" --reply-timeout "$reply_timeout" \
      --serial-base "$serial_base" | tee "$work/result-$backend-$n.txt" || status=1
  done
  if [ "$claimed" = 1 ]; then
    # A logger's reply follows the commit of its frame; stopping first leaves none in flight.
    stop_process
    sent="$(cat "$work"/result-"$backend"-*.txt | grep '^{' |
      python3 -c 'import json, sys; print(sum(json.loads(l)["frames_sent_by_kind"]["data"] for l in sys.stdin))')"
    stored="$(env "${env_args[@]}" "$server" --data-dir "$work/data" export --user "$email" \
      --format json 2>/dev/null | wc -l)"
    echo "collector-load: $backend: $sent data frames sent, $stored readings stored" |
      tee "$work/stored-$backend.txt"
    [ "$sent" = "$stored" ] || status=1
  fi
  stop_collector
done

echo
echo "collector-load: results"
for backend in $backends; do
  for n in "$@"; do
    echo "== $backend, $n loggers"
    grep -v '^{' "$work/result-$backend-$n.txt" || true
  done
  cat "$work/stored-$backend.txt" 2>/dev/null || true
done
echo
for backend in $backends; do
  for n in "$@"; do
    grep '^{' "$work/result-$backend-$n.txt" | sed "s/^{/{\"backend\":\"$backend\",/" || true
  done
done
# Warnings and errors of the collectors (their logs may carry colour codes).
for backend in $backends; do
  sed 's/\x1b\[[0-9;]*m//g' "$work/collector-$backend.log" | grep -E ' (WARN|ERROR) |panicked' \
    >"$work/problems-$backend.log" || true
  if [ -s "$work/problems-$backend.log" ]; then
    echo
    echo "collector-load: $(wc -l <"$work/problems-$backend.log") warning/error lines in the $backend collector log, the first 10:"
    head -n 10 "$work/problems-$backend.log"
  fi
done
exit "$status"
