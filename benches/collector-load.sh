#!/usr/bin/env bash
# Collector load benchmark: builds the release collector, starts it on a free 127.0.0.1 port with
# a temporary data directory, runs the load harness (benches/collector_load.rs) for each logger
# count (default: 1000 and 10000), stops the collector with SIGTERM and prints the results.
#
# Usage: benches/collector-load.sh [N ...]
# Environment: DURATION (s, default 60), RAMP (s, 20), DATA_INTERVAL (s, 10),
# HEARTBEAT_INTERVAL (s, 30), REPLY_TIMEOUT (s, 5), CARGO_TARGET_DIR (default target).
# Exit status: 0 when every run kept all loggers and lost no frame, 1 otherwise.
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
cargo bench -p deyehard --bench collector_load --no-run
collector="$target_dir/release/deyehard-collector"

work="$(mktemp -d)"
collector_pid=""
stop_collector() {
  if [ -n "$collector_pid" ] && kill -0 "$collector_pid" 2>/dev/null; then
    kill -TERM "$collector_pid"
    wait "$collector_pid" && echo "collector-load: collector stopped (exit 0)" ||
      echo "collector-load: collector exit status $?"
  fi
  collector_pid=""
}
trap 'stop_collector; rm -rf "$work"' EXIT

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
"$collector" --data-dir "$work/data" serve --listen "127.0.0.1:$port" >"$work/collector.log" 2>&1 &
collector_pid=$!
echo "collector-load: collector pid $collector_pid on 127.0.0.1:$port, data in $work/data"

# Wait until the port accepts connections (or the collector dies).
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  if ! kill -0 "$collector_pid" 2>/dev/null; then
    echo "collector-load: the collector exited; its log:" >&2
    cat "$work/collector.log" >&2
    exit 1
  fi
  sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || {
  echo "collector-load: 127.0.0.1:$port does not accept connections after 10 s" >&2
  exit 1
}

status=0
for n in "$@"; do
  echo "collector-load: $n loggers"
  cargo bench -p deyehard --bench collector_load -- \
    --addr "127.0.0.1:$port" --pid "$collector_pid" --loggers "$n" \
    --duration "$duration" --ramp "$ramp" --data-interval "$data_interval" \
    --heartbeat-interval "$heartbeat_interval" --reply-timeout "$reply_timeout" \
    | tee "$work/result-$n.txt" || status=1
done

stop_collector
echo
echo "collector-load: results"
for n in "$@"; do
  grep -v '^{' "$work/result-$n.txt" || true
done
echo
for n in "$@"; do
  grep '^{' "$work/result-$n.txt" || true
done
# Warnings and errors of the collector (its log may carry colour codes).
sed 's/\x1b\[[0-9;]*m//g' "$work/collector.log" | grep -E ' (WARN|ERROR) |panicked' >"$work/problems.log" || true
if [ -s "$work/problems.log" ]; then
  echo
  echo "collector-load: $(wc -l <"$work/problems.log") warning/error lines in the collector log, the first 10:"
  head -n 10 "$work/problems.log"
fi
exit "$status"
