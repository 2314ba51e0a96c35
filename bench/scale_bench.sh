#!/usr/bin/env bash
# Issue 7 targets 3 and 4: token throughput and p99 with a small and a large database
# (10^3 vs 10^6 deploy tokens, 10^5 projects in nested groups), startup to healthy on each
# database, and peak RSS under load. See bench/README.md.
#
#   bash bench/scale_bench.sh                                   # ~6 min + build
#   DURATION=3s ROUNDS=1 LARGE_TOKENS=20000 bash bench/scale_bench.sh   # smoke test
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/common.sh
source "$REPO/bench/common.sh"

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-2}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
SMALL_TOKENS=${SMALL_TOKENS:-1000}
SMALL_TOP=${SMALL_TOP:-1}
LARGE_TOKENS=${LARGE_TOKENS:-1000000}
LARGE_TOP=${LARGE_TOP:-100}
FANOUT=${FANOUT:-10}
PROJECTS_PER_LEAF=${PROJECTS_PER_LEAF:-10}
STARTUP_RUNS=${STARTUP_RUNS:-5}
KEEP_WORKDIR=${KEEP_WORKDIR:-0}
OPENSSL_SECONDS=${OPENSSL_SECONDS:-5}

for tool in wrk curl openssl python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done

WORK=$(mktemp -d -t wvs-scale.XXXXXX)
cleanup() {
  stop_server
  if [[ $KEEP_WORKDIR == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $CPUS CPUs"
build_release

# The request: a group token of sg0/s9 asking pull,push on a repository one level below the
# project sg0/s9/t9/p9, which exists in both trees (two prefix lookups, the second a hit).
SCOPE="repository:sg0/s9/t9/p9/app:pull,push"
declare -A USER SECRET

# make_db SIZE TOKENS TOP: CLI database, bulk seed, CLI load token (proves the seeded
# database is one the binary reads and writes).
make_db() {
  local size=$1 tokens=$2 top=$3 dir=$WORK/$1 started json probe user secret path code body
  mkdir -p "$dir"
  started=$(now)
  "$BIN" --data-dir "$dir/data" --keys-dir "$dir/keys" keys init >/dev/null || die "keys init failed"
  # Any command that opens the database creates and migrates it.
  "$BIN" --data-dir "$dir/data" --keys-dir "$dir/keys" group create bench >/dev/null || die "group create failed"
  python3 "$REPO/bench/seed_db.py" "$dir/data/wvs.db" --groups-top "$top" --fanout "$FANOUT" \
    --projects-per-leaf "$PROJECTS_PER_LEAF" --tokens "$tokens" --probe-out "$dir/probe" >&2 ||
    die "seed_db.py failed"
  json=$("$BIN" --data-dir "$dir/data" --keys-dir "$dir/keys" token create --group sg0/s9 \
    --name bench-load --scopes read_registry,write_registry --json) || die "token create failed"
  USER[$size]=$(json_field "$json" username)
  SECRET[$size]=$(json_field "$json" token)
  log "[$size] database ready in $(elapsed "$started")s: $(du -sh "$dir/data/wvs.db" | cut -f1)"
}

make_db small "$SMALL_TOKENS" "$SMALL_TOP"
make_db large "$LARGE_TOKENS" "$LARGE_TOP"

# ---------------------------------------------------------------- startup to healthy
declare -A STARTUP
for size in small large; do
  times=()
  for _ in $(seq 1 "$STARTUP_RUNS"); do
    port=$(free_port) || die "no free port"
    t=$(RUST_LOG=warn python3 "$REPO/bench/startup_probe.py" "$port" -- "$BIN" \
      --data-dir "$WORK/$size/data" --keys-dir "$WORK/$size/keys" serve --listen "127.0.0.1:$port") ||
      die "[$size] startup probe failed"
    times+=("$t")
  done
  STARTUP[$size]=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
  log "[$size] startup to healthy (ms): ${times[*]} → median ${STARTUP[$size]}"
done

SIGN_BEFORE=$(openssl_rsa_sign_per_s "$WORK/openssl-before.out")
log "openssl rsa2048 sign/s before: $SIGN_BEFORE"

# ---------------------------------------------------------------- load
declare -A RPS_LIST P99_LIST RSS_MAX
run_load() {
  local size=$1 round=$2 port url slog out code body jwt payload check rps p99 rss
  port=$(free_port) || die "no free port"
  url="http://127.0.0.1:$port"
  slog=$WORK/serve-$size-$round.log
  RUST_LOG=warn "$BIN" --data-dir "$WORK/$size/data" --keys-dir "$WORK/$size/keys" serve \
    --listen "127.0.0.1:$port" >"$slog" 2>&1 &
  SERVER_PID=$!
  wait_healthy "$url" "$SERVER_PID" "$slog"

  body=$WORK/first-$size.json
  code=$(curl -s -o "$body" -w '%{http_code}' -u "${USER[$size]}:${SECRET[$size]}" \
    "$url/jwt/auth?service=container_registry&scope=$(urlencode "$SCOPE")&account=$(urlencode "${USER[$size]}")")
  [[ $code == 200 ]] || die "[$size] first token request answered $code: $(head -c 300 "$body")"
  jwt=$(sed -n 's/.*"token":"\([^"]*\)".*/\1/p' "$body")
  payload=$(cut -d. -f2 <<<"$jwt" | tr '_-' '/+')
  while ((${#payload} % 4)); do payload+="="; done
  base64 -d <<<"$payload" 2>/dev/null | grep -q '"actions":\["pull","push"\]' ||
    die "[$size] the load token is not granted pull,push"
  # A seeded token authenticates like a CLI-made one (digest format check).
  IFS=: read -r puser psecret ppath <"$WORK/$size/probe"
  code=$(curl -s -o "$body" -w '%{http_code}' -u "$puser:$psecret" \
    "$url/jwt/auth?service=container_registry&scope=$(urlencode "repository:$ppath:pull")")
  [[ $code == 200 ]] && grep -q '"access_token"' "$body" || die "[$size] seeded probe token refused: $code"

  out=$WORK/wrk-$size-$round.out
  log "[$size #$round] wrk -t $THREADS -c $CONNECTIONS -d $DURATION --latency"
  WVS_BENCH_USER=${USER[$size]} WVS_BENCH_SECRET=${SECRET[$size]} WVS_BENCH_SCOPE=$SCOPE \
    wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" --latency -s "$REPO/bench/token.lua" "$url" \
    >"$out" 2>&1 || { cat "$out" >&2; die "[$size] wrk failed"; }
  kill -0 "$SERVER_PID" 2>/dev/null || die "[$size] server died: $(tail -n 5 "$slog")"
  rss=$(awk '/^VmHWM:/ { print $2 }' "/proc/$SERVER_PID/status")
  stop_server
  check=$(grep '^wrk-check:' "$out") || die "[$size] no check line"
  [[ $check == *" non200=0 bad_body=0 "* && $check == *"errors=connect:0,read:0,write:0,timeout:0"* ]] ||
    die "[$size] bad answers or socket errors: $check"
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  p99=$(sed -n 's/.*p99=\([0-9]*\).*/\1/p' <<<"$(grep '^wrk-latency-us:' "$out")")
  log "[$size #$round] $rps tokens/s, p99 ${p99} us, VmHWM ${rss} kB"
  RPS_LIST[$size]+="$rps "
  P99_LIST[$size]+="$p99 "
  ((${RSS_MAX[$size]:-0} > rss)) || RSS_MAX[$size]=$rss
}

for round in $(seq 1 "$ROUNDS"); do
  run_load small "$round"
  run_load large "$round"
done

SIGN_AFTER=$(openssl_rsa_sign_per_s "$WORK/openssl-after.out")
log "openssl rsa2048 sign/s after: $SIGN_AFTER"

diff_pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f%%", (b - a) / a * 100 }'; }

S_RPS=$(median "${RPS_LIST[small]}")
L_RPS=$(median "${RPS_LIST[large]}")
S_P99=$(median "${P99_LIST[small]}")
L_P99=$(median "${P99_LIST[large]}")
{
  echo
  echo "=== wvs-auth scale benchmark ==="
  echo "machine       : $CPUS CPUs, load average now $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "openssl sign/s: before $SIGN_BEFORE, after $SIGN_AFTER (rsa2048, -multi $CPUS)"
  echo "small db      : $SMALL_TOKENS seeded tokens, $((SMALL_TOP * FANOUT * FANOUT * PROJECTS_PER_LEAF)) projects"
  echo "large db      : $LARGE_TOKENS seeded tokens, $((LARGE_TOP * FANOUT * FANOUT * PROJECTS_PER_LEAF)) projects"
  echo "load          : wrk -t $THREADS -c $CONNECTIONS -d $DURATION, $ROUNDS rounds alternating small/large, scope $SCOPE"
  echo "tokens/s      : small [${RPS_LIST[small]}] median $S_RPS; large [${RPS_LIST[large]}] median $L_RPS; large vs small $(diff_pct "$S_RPS" "$L_RPS")"
  echo "p99 (us)      : small [${P99_LIST[small]}] median $S_P99; large [${P99_LIST[large]}] median $L_P99; large vs small $(diff_pct "$S_P99" "$L_P99")"
  echo "startup (ms)  : small ${STARTUP[small]}, large ${STARTUP[large]} (median of $STARTUP_RUNS, spawn to first 200 on /-/health)"
  echo "peak RSS (kB) : small ${RSS_MAX[small]}, large ${RSS_MAX[large]} (VmHWM after the load)"
  echo "RESULT small_rps=$S_RPS large_rps=$L_RPS rps_diff=$(diff_pct "$S_RPS" "$L_RPS") small_p99_us=$S_P99 large_p99_us=$L_P99 p99_diff=$(diff_pct "$S_P99" "$L_P99") startup_small_ms=${STARTUP[small]} startup_large_ms=${STARTUP[large]} rss_small_kb=${RSS_MAX[small]} rss_large_kb=${RSS_MAX[large]} openssl_before=$SIGN_BEFORE openssl_after=$SIGN_AFTER"
}
