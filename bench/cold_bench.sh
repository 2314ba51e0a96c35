#!/usr/bin/env bash
# Issue 7 target 5, the cold path: bursts of N new TCP connections, each doing one token
# request (no keep-alive), against the same requests over keep-alive connections and
# against N new connections each asking /-/health (no signature), to show what the
# connection itself costs. See bench/README.md.
#
#   bash bench/cold_bench.sh            # ~1 min + build
#   N=500 ROUNDS=1 bash bench/cold_bench.sh
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/common.sh
source "$REPO/bench/common.sh"

N=${N:-2000}
CONCURRENCY=${CONCURRENCY:-64}
ROUNDS=${ROUNDS:-3}
KEEP_WORKDIR=${KEEP_WORKDIR:-0}

for tool in ab curl /usr/bin/time; do
  command -v "$tool" >/dev/null || die "$tool is not installed (ab: apt-get install apache2-utils)"
done

WORK=$(mktemp -d -t wvs-cold.XXXXXX)
cleanup() {
  stop_server
  if [[ $KEEP_WORKDIR == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $CPUS CPUs"
build_release
wvs() { "$BIN" --data-dir "$WORK/data" --keys-dir "$WORK/keys" "$@"; }
wvs keys init >/dev/null
wvs group create bench >/dev/null
wvs project create bench/app >/dev/null
json=$(wvs token create --project bench/app --name bench-load --scopes read_registry,write_registry --json)
user=$(json_field "$json" username)
secret=$(json_field "$json" token)
auth=$(printf '%s:%s' "$user" "$secret" | base64 -w0)

port=$(free_port) || die "no free port"
base="http://127.0.0.1:$port"
token_url="$base/jwt/auth?service=container_registry&scope=$(urlencode "repository:bench/app:pull,push")&account=$(urlencode "$user")"
RUST_LOG=warn "$BIN" --data-dir "$WORK/data" --keys-dir "$WORK/keys" serve --listen "127.0.0.1:$port" \
  >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
wait_healthy "$base" "$SERVER_PID" "$WORK/serve.log"

# server_cpu: "utime stime" of the server in clock ticks.
server_cpu() { awk '{ print $14, $15 }' "/proc/$SERVER_PID/stat"; }
HZ=$(getconf CLK_TCK)

declare -A RPS P99 SRV_US SRV_SYS_PCT AB_US
# burst LABEL AB-ARGS...: one ab run of N requests; per-request server and ab CPU.
burst() {
  local label=$1 out before after u0 s0 u1 s1 ab_cpu
  out=$WORK/ab-$label.out
  shift
  read -r u0 s0 <<<"$(server_cpu)"
  /usr/bin/time -f '%U %S' -o "$WORK/time-$label" ab -q -n "$N" -c "$CONCURRENCY" "$@" >"$out" 2>&1 ||
    { cat "$out" >&2; die "[$label] ab failed"; }
  read -r u1 s1 <<<"$(server_cpu)"
  grep -q '^Failed requests: *0$' "$out" || die "[$label] failed requests: $(grep -A3 '^Failed' "$out")"
  ! grep -q '^Non-2xx' "$out" || die "[$label] non-200 answers: $(grep '^Non-2xx' "$out")"
  grep -q "^Complete requests: *$N\$" "$out" || die "[$label] not all requests completed"
  RPS[$label]+="$(awk '/^Requests per second:/ { print $4 }' "$out") "
  P99[$label]+="$(awk '$1 == "99%" { print $2 }' "$out") "
  SRV_US[$label]+="$(awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v hz="$HZ" -v n="$N" 'BEGIN { printf "%.0f", (u + s) / hz / n * 1e6 }') "
  SRV_SYS_PCT[$label]+="$(awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) 'BEGIN { if (u + s) printf "%.0f", s / (u + s) * 100; else print 0 }') "
  ab_cpu=$(awk '{ print $1 + $2 }' "$WORK/time-$label")
  AB_US[$label]+="$(awk -v c="$ab_cpu" -v n="$N" 'BEGIN { printf "%.0f", c / n * 1e6 }') "
}

# Warm the page cache and the key/RNG once, so the first burst is not the first request.
curl -s -o /dev/null -u "$user:$secret" "$token_url"

for round in $(seq 1 "$ROUNDS"); do
  log "round $round: $N requests each, ab -c $CONCURRENCY"
  burst cold-token -H "Authorization: Basic $auth" "$token_url"
  burst warm-token -k -H "Authorization: Basic $auth" "$token_url"
  burst cold-health "$base/-/health"
done
kill -0 "$SERVER_PID" 2>/dev/null || die "server died: $(tail -n 5 "$WORK/serve.log")"
RSS=$(awk '/^VmHWM:/ { print $2 }' "/proc/$SERVER_PID/status")
stop_server

median_lower() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
{
  echo
  echo "=== wvs-auth cold-path benchmark ==="
  echo "machine      : $CPUS CPUs, load average now $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "bursts       : $N requests, ab -c $CONCURRENCY, $ROUNDS rounds; somaxconn $(cat /proc/sys/net/core/somaxconn), tcp_max_syn_backlog $(cat /proc/sys/net/ipv4/tcp_max_syn_backlog)"
  printf '%-12s %-28s %-8s %-22s %-14s %s\n' label "req/s (median)" "p99 ms" "server CPU us/req" "server sys %" "ab CPU us/req"
  for label in cold-token warm-token cold-health; do
    printf '%-12s %-28s %-8s %-22s %-14s %s\n' "$label" "$(median_lower "${RPS[$label]}") [${RPS[$label]% }]" \
      "$(median_lower "${P99[$label]}")" "$(median_lower "${SRV_US[$label]}")" "$(median_lower "${SRV_SYS_PCT[$label]}")" "$(median_lower "${AB_US[$label]}")"
  done
  echo "server VmHWM : $RSS kB"
  echo "RESULT cold_token_rps=$(median_lower "${RPS[cold-token]}") warm_token_rps=$(median_lower "${RPS[warm-token]}") cold_health_rps=$(median_lower "${RPS[cold-health]}") cold_token_p99_ms=$(median_lower "${P99[cold-token]}") cold_server_us_per_req=$(median_lower "${SRV_US[cold-token]}") warm_server_us_per_req=$(median_lower "${SRV_US[warm-token]}") cold_health_server_us_per_req=$(median_lower "${SRV_US[cold-health]}")"
}
