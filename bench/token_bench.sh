#!/usr/bin/env bash
# Token-endpoint throughput benchmark for wvs-auth. See bench/README.md.
#
# Builds the release binary, seeds a throw-away database with SEED_TOKENS deploy tokens through
# the CLI, measures `openssl speed rsa2048` (or ecdsap256) sign/s on this machine, then loads
# GET /jwt/auth with wrk (bench/token.lua) and prints tokens/s, p50, p99, peak RSS and
# ratio = tokens/s ÷ openssl sign/s. Exits non-zero on any failure (build, seeding, a non-200
# answer, a socket error, a leaked secret), never because the ratio is low.
#
# Environment:
#   KEY_ALG=RS256       signing key algorithm: RS256 (ratio to openssl rsa2048) or ES256 (to ecdsap256)
#   DURATION=20s        wrk duration of the main (RUST_LOG=warn) run
#   CONNECTIONS=64      wrk connections
#   THREADS=2           wrk threads
#   INFO_RUN=1          also run with RUST_LOG=info (the per-request log line); 0 to skip
#   INFO_DURATION=$DURATION
#   SEED_TOKENS=10000   deploy tokens in the database besides the one used for the load
#   SEED_JOBS=2         parallel `token create` calls (xargs -P)
#   SEED_BUDGET_SECS=120  if the first 1,000 project a longer seeding, the rest is spread over
#                       several groups/projects with SEED_FAST_JOBS parallel calls
#   SEED_FAST_JOBS=2×CPUs
#   OPENSSL_SECONDS=10  `openssl speed -seconds` (sign and verify each take this long)
#   OPENSSL_MULTI=CPUs  `openssl speed -multi`
#   OPENSSL_ELAPSED=0   1 adds -elapsed (wall clock instead of CPU time as openssl's divisor)
#   OPENSSL_AFTER=1     measure openssl again after the load, to show how stable the baseline is
#   KEEP_WORKDIR=0      1 keeps the temp dir (database, logs, wrk output) for inspection
#   WVS_AUTH_WORKERS    passed through to `serve` (default there: number of CPUs)
set -euo pipefail

DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
INFO_RUN=${INFO_RUN:-1}
# bodies: token.lua checks every answer for an access_token; status: wrk only counts
# non-2xx/3xx answers (lighter on the shared cores). See bench/README.md.
WRK_CHECK=${WRK_CHECK:-bodies}
INFO_DURATION=${INFO_DURATION:-$DURATION}
SEED_TOKENS=${SEED_TOKENS:-10000}
SEED_JOBS=${SEED_JOBS:-2}
SEED_BUDGET_SECS=${SEED_BUDGET_SECS:-120}
CPUS=$(nproc)
SEED_FAST_JOBS=${SEED_FAST_JOBS:-$((2 * CPUS))}
KEY_ALG=${KEY_ALG:-RS256}
case $KEY_ALG in
  RS256) OPENSSL_ALG=rsa2048 ;;
  ES256) OPENSSL_ALG=ecdsap256 ;;
  *) echo "KEY_ALG must be RS256 or ES256" >&2; exit 2 ;;
esac
OPENSSL_SECONDS=${OPENSSL_SECONDS:-10}
OPENSSL_MULTI=${OPENSSL_MULTI:-$CPUS}
OPENSSL_ELAPSED=${OPENSSL_ELAPSED:-0}
OPENSSL_AFTER=${OPENSSL_AFTER:-1}
KEEP_WORKDIR=${KEEP_WORKDIR:-0}

SERVICE=container_registry
SCOPE=repository:bench/app:pull,push

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
LUA=$BENCH_DIR/token.lua
# shellcheck source=bench/common.sh
source "$REPO/bench/common.sh"

# This script's messages keep their own prefix.
log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  printf '[bench] FAILED: %s\n' "$*" >&2
  exit 1
}

# Only the workers setting is taken from the caller's environment: a stray WVS_AUTH_CONFIG,
# WVS_AUTH_SERVICE or WVS_AUTH_LISTEN must not change what is measured.
while read -r var; do
  [[ $var == WVS_AUTH_WORKERS ]] || unset "$var"
done < <(compgen -e | grep '^WVS_AUTH_' || true)

[[ $SEED_TOKENS =~ ^[0-9]+$ ]] || die "SEED_TOKENS must be a number"
[[ $CONNECTIONS =~ ^[0-9]+$ && $THREADS =~ ^[0-9]+$ ]] || die "CONNECTIONS and THREADS must be numbers"
((CONNECTIONS >= THREADS)) || die "CONNECTIONS must be >= THREADS (wrk needs one connection per thread)"

# ---------------------------------------------------------------- tools
for tool in cargo curl openssl awk xargs; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
if ! command -v wrk >/dev/null; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    log "installing wrk"
    if ! { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }; then
      die "apt-get install wrk failed"
    fi
  else
    die "wrk is not installed (apt-get install wrk)"
  fi
fi

# ---------------------------------------------------------------- state and cleanup
WORK=$(mktemp -d "${TMPDIR:-/tmp}/wvs-bench.XXXXXX")
DATA=$WORK/data
KEYS=$WORK/keys

cleanup() {
  local rc=$?
  stop_server
  if [[ $KEEP_WORKDIR == 1 ]]; then
    log "kept $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $CPUS CPUs (numbers mean little on a busy machine)"

# ---------------------------------------------------------------- build
if [[ -n ${WVS_AUTH_BIN:-} ]]; then
  # A prebuilt binary (e.g. the previous commit's, for an A/B in one run): no build.
  BIN=$WVS_AUTH_BIN
else
  log "cargo build --release"
  (cd "$REPO" && cargo build --release --quiet) || die "cargo build --release failed"
  TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
  [[ $TARGET_DIR == /* ]] || TARGET_DIR=$REPO/$TARGET_DIR
  BIN=$TARGET_DIR/release/wvs-auth
fi
[[ -x $BIN ]] || die "no binary at $BIN"

wvs() { "$BIN" --data-dir "$DATA" --keys-dir "$KEYS" "$@"; }

# ---------------------------------------------------------------- database
log "keys init, group bench, project bench/app in $WORK"
wvs keys init --alg "$KEY_ALG" >/dev/null || die "keys init failed"
wvs group create bench >/dev/null || die "group create failed"
wvs project create bench/app >/dev/null || die "project create failed"

# The token the load uses: read + write registry on bench/app, default username
# (wvs+deploy-token-N, whose `+` must be percent-encoded in account=).
load_json=$(wvs token create --project bench/app --name bench-load \
  --scopes read_registry,write_registry --json) || die "token create (load token) failed"
json_field() { sed -n "s/^ *\"$1\": \"\\([^\"]*\\)\",\\{0,1\\}\$/\\1/p" <<<"$load_json"; }
LOAD_USER=$(json_field username)
LOAD_SECRET=$(json_field token)
[[ -n $LOAD_USER && $LOAD_SECRET == wvsdt-* ]] || die "cannot read username/token from: $load_json"

# One `token create` per line of $1 (arguments after `token create --json`), $2 in parallel.
seed_batch() {
  local args=$1 jobs=$2 out=$WORK/seed.out err=$WORK/seed.err
  if ! xargs -P "$jobs" -L 1 "$BIN" --data-dir "$DATA" --keys-dir "$KEYS" token create --json \
    <"$args" >>"$out" 2>>"$err"; then
    die "seeding: a token create failed: $(tail -n 3 "$err")"
  fi
}

SCOPE_SETS=(
  "read_registry"
  "read_registry,write_registry"
  "read_repository"
  "read_package_registry,write_package_registry"
  "read_repository,read_registry"
)

# Writes argument lines for tokens $2..$3 owned by "$1" (e.g. "--project bench/app").
seed_args() {
  local owner=$1 from=$2 to=$3 i
  for ((i = from; i <= to; i++)); do
    printf '%s --name seed-%d --scopes %s\n' "$owner" "$i" "${SCOPE_SETS[i % ${#SCOPE_SETS[@]}]}"
  done
}

SEED_MODE="xargs -P $SEED_JOBS, all in bench/app"
seed_start=$(now)
if ((SEED_TOKENS > 0)); then
  probe=$((SEED_TOKENS < 1000 ? SEED_TOKENS : 1000))
  log "seeding $SEED_TOKENS deploy tokens via the CLI (xargs -P $SEED_JOBS); first $probe to time it"
  seed_args "--project bench/app" 1 "$probe" >"$WORK/seed-1.args"
  seed_batch "$WORK/seed-1.args" "$SEED_JOBS"
  probe_secs=$(elapsed "$seed_start")
  projected=$(awk -v s="$probe_secs" -v n="$SEED_TOKENS" -v p="$probe" 'BEGIN { printf "%.0f", s * n / p }')
  log "$probe tokens took ${probe_secs}s; $SEED_TOKENS would take ~${projected}s at this rate"
  if ((SEED_TOKENS > probe)); then
    if ((projected > SEED_BUDGET_SECS)); then
      # Still only the CLI writes: spread the rest over a few groups, each with a project,
      # half project tokens and half group tokens, with more calls in flight.
      SEED_MODE="first $probe with xargs -P $SEED_JOBS in bench/app, rest with xargs -P $SEED_FAST_JOBS over 4 groups/projects"
      log "over the ${SEED_BUDGET_SECS}s budget: spreading the rest over groups seed-1..4 with xargs -P $SEED_FAST_JOBS"
      : >"$WORK/seed-2.args"
      remaining=$((SEED_TOKENS - probe))
      per=$(((remaining + 3) / 4))
      from=$((probe + 1))
      for g in 1 2 3 4; do
        wvs group create "seed-$g" >/dev/null || die "group create seed-$g failed"
        wvs project create "seed-$g/app" >/dev/null || die "project create seed-$g/app failed"
        to=$((from + per - 1))
        ((to <= SEED_TOKENS)) || to=$SEED_TOKENS
        half=$(((from + to) / 2))
        seed_args "--project seed-$g/app" "$from" "$half" >>"$WORK/seed-2.args"
        seed_args "--group seed-$g" "$((half + 1))" "$to" >>"$WORK/seed-2.args"
        from=$((to + 1))
      done
      seed_batch "$WORK/seed-2.args" "$SEED_FAST_JOBS"
    else
      seed_args "--project bench/app" "$((probe + 1))" "$SEED_TOKENS" >"$WORK/seed-2.args"
      seed_batch "$WORK/seed-2.args" "$SEED_JOBS"
    fi
  fi
  seeded=$(grep -c '^  "id": ' "$WORK/seed.out" || true)
  ((seeded == SEED_TOKENS)) || die "seeding: expected $SEED_TOKENS tokens, the CLI printed $seeded"
fi
SEED_SECS=$(elapsed "$seed_start")
log "seeded $SEED_TOKENS tokens in ${SEED_SECS}s ($SEED_MODE)"

# ---------------------------------------------------------------- openssl baseline
openssl_args=(speed -multi "$OPENSSL_MULTI" -seconds "$OPENSSL_SECONDS")
if [[ $OPENSSL_ELAPSED == 1 ]]; then openssl_args+=(-elapsed); fi

# openssl_sign_per_s NAME: runs openssl speed for the key's algorithm and prints its sign/s.
openssl_sign_per_s() {
  local out=$WORK/openssl-$1.out err=$WORK/openssl-$1.err rate
  log "openssl ${openssl_args[*]} $OPENSSL_ALG ($1, takes ~$((2 * OPENSSL_SECONDS))s)"
  openssl "${openssl_args[@]}" "$OPENSSL_ALG" >"$out" 2>"$err" ||
    die "openssl speed failed: $(tail -n 3 "$err")"
  # OpenSSL 3.x prints
  #                   sign    verify    sign/s verify/s
  #   rsa 2048 bits 0.000200s 0.000012s   5009.0  82128.0
  #    256 bits ecdsa (nistp256)   0.0000s   0.0000s  68959.6  23281.0
  # sign/s is the next-to-last field of the data line.
  rate=$(awk -v alg="$OPENSSL_ALG" '
    alg == "rsa2048" && $1 == "rsa" && $2 == "2048" && $3 == "bits" { print $(NF - 1); exit }
    alg == "ecdsap256" && /ecdsa \(nistp256\)/ { print $(NF - 1); exit }
  ' "$out")
  [[ $rate =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "cannot find $OPENSSL_ALG sign/s in openssl output: $(cat "$out")"
  log "openssl $OPENSSL_ALG sign/s ($1): $rate"
  printf '%s' "$rate"
}

SIGN_PER_S=$(openssl_sign_per_s before)

# ---------------------------------------------------------------- load runs
b64url_decode() {
  local s
  s=$(tr '_-' '/+' <<<"$1")
  while ((${#s} % 4)); do s+="="; done
  base64 -d <<<"$s" 2>/dev/null
}

declare -A RPS P50 P99 RSS RESPONSES LOGLINES SRV_US WRK_US BUSY_PCT
# CPU time in clock ticks: utime+stime of one process, and busy (non-idle) time of the
# whole machine from /proc/stat.
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
total_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9; exit }' /proc/stat; }
HZ=$(getconf CLK_TCK)

# run_load LABEL RUST_LOG DURATION
run_load() {
  local label=$1 rust_log=$2 duration=$3 port url slog i code body jwt payload out check lat
  port=$(free_port) || die "no free port found"
  url="http://127.0.0.1:$port"
  slog=$WORK/serve-$label.log
  log "[$label] wvs-auth serve on 127.0.0.1:$port with RUST_LOG=$rust_log"
  # The binary itself, not the wvs function, so that $! is the server's pid.
  RUST_LOG=$rust_log "$BIN" --data-dir "$DATA" --keys-dir "$KEYS" serve --listen "127.0.0.1:$port" \
    >"$slog" 2>&1 &
  SERVER_PID=$!
  for i in $(seq 1 300); do
    kill -0 "$SERVER_PID" 2>/dev/null || die "[$label] server exited at start: $(tail -n 5 "$slog")"
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$url/-/health" || true) == 200 ]] && break
    ((i < 300)) || die "[$label] /-/health not 200 after 30 s: $(tail -n 5 "$slog")"
    sleep 0.1
  done

  # One request by hand first: a clear message if credentials or grants are off, and proof
  # that what wrk measures is a real pull,push grant, not an empty-access token.
  body=$WORK/first-$label.json
  code=$(curl -s -o "$body" -w '%{http_code}' -u "$LOAD_USER:$LOAD_SECRET" \
    "$url/jwt/auth?service=$SERVICE&scope=$(urlencode "$SCOPE")&account=$(urlencode "$LOAD_USER")") ||
    die "[$label] curl to /jwt/auth failed"
  [[ $code == 200 ]] || die "[$label] first token request answered $code: $(head -c 300 "$body")"
  jwt=$(sed -n 's/.*"token":"\([^"]*\)".*/\1/p' "$body")
  payload=$(b64url_decode "$(cut -d. -f2 <<<"$jwt")")
  grep -q '"actions":\["pull","push"\]' <<<"$payload" ||
    die "[$label] token does not grant pull,push on bench/app: $payload"

  out=$WORK/wrk-$label.out
  log "[$label] wrk -t $THREADS -c $CONNECTIONS -d $duration --latency"
  local srv0 busy0 total0 srv1 busy1 total1
  srv0=$(proc_ticks "$SERVER_PID") busy0=$(busy_ticks) total0=$(total_ticks)
  if ! WVS_BENCH_USER=$LOAD_USER WVS_BENCH_SECRET=$LOAD_SECRET WVS_BENCH_SERVICE=$SERVICE \
    WVS_BENCH_SCOPE=$SCOPE WVS_BENCH_CHECK=$WRK_CHECK /usr/bin/time -f '%U %S' -o "$WORK/wrk-time-$label" \
    wrk -t "$THREADS" -c "$CONNECTIONS" -d "$duration" --latency \
    -s "$LUA" "$url" >"$out" 2>&1; then
    cat "$out" >&2
    die "[$label] wrk failed"
  fi
  srv1=$(proc_ticks "$SERVER_PID") busy1=$(busy_ticks) total1=$(total_ticks)
  sed 's/^/    /' "$out" >&2

  kill -0 "$SERVER_PID" 2>/dev/null || die "[$label] server died during the run: $(tail -n 5 "$slog")"
  # CPU per token: the server's and wrk's (both share the machine's cores), and how busy
  # the whole machine was meanwhile (anything above server + wrk is someone else).
  local n
  n=$(sed -n 's/.* responses=\([0-9]*\).*/\1/p' <<<"$(grep '^wrk-check:' "$out")")
  if ((${n:-0} > 0)); then
    SRV_US[$label]=$(awk -v t=$((srv1 - srv0)) -v hz="$HZ" -v n="$n" 'BEGIN { printf "%.0f", t / hz / n * 1e6 }')
    WRK_US[$label]=$(awk '{ print $1 + $2 }' "$WORK/wrk-time-$label" | awk -v n="$n" '{ printf "%.0f", $1 / n * 1e6 }')
  fi
  BUSY_PCT[$label]=$(awk -v b=$((busy1 - busy0)) -v t=$((total1 - total0)) 'BEGIN { if (t) printf "%.0f", b / t * 100 }')
  RSS[$label]=$(awk '/^VmHWM:/ { print $2 " " $3 }' "/proc/$SERVER_PID/status")
  stop_server

  check=$(grep '^wrk-check:' "$out") || die "[$label] token.lua printed no check line"
  lat=$(grep '^wrk-latency-us:' "$out") || die "[$label] token.lua printed no latency line"
  RESPONSES[$label]=$(sed -n 's/.* responses=\([0-9]*\).*/\1/p' <<<"$check")
  RPS[$label]=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  # wrk's own --latency table (with units), falling back to token.lua's microseconds.
  P50[$label]=$(awk '$1 == "50%" { print $2; exit }' "$out")
  P99[$label]=$(awk '$1 == "99%" { print $2; exit }' "$out")
  [[ -n ${P50[$label]} ]] || P50[$label]="$(sed -n 's/.*p50=\([0-9]*\).*/\1/p' <<<"$lat")us"
  [[ -n ${P99[$label]} ]] || P99[$label]="$(sed -n 's/.*p99=\([0-9]*\).*/\1/p' <<<"$lat")us"
  LOGLINES[$label]=$(grep -c ' token ip=' "$slog" || true)

  [[ -n ${RPS[$label]} ]] || die "[$label] no Requests/sec in wrk output"
  ((${RESPONSES[$label]:-0} > 0)) || die "[$label] no responses at all"
  [[ $check == *" non200=0 "* ]] || die "[$label] non-200 answers: $check"
  [[ $check == *" bad_body=0 "* ]] || die "[$label] 200 answers without access_token: $check"
  [[ $check == *"errors=connect:0,read:0,write:0,timeout:0"* ]] || die "[$label] socket errors: $check"
  if grep -qF -- "$LOAD_SECRET" "$slog"; then
    die "[$label] the deploy-token secret appears in the server log (SPEC §1: never logged)"
  fi
}

run_load warn warn "$DURATION"
if [[ $INFO_RUN == 1 ]]; then
  run_load info info "$INFO_DURATION"
fi

SIGN_AFTER=""
if [[ $OPENSSL_AFTER == 1 ]]; then
  SIGN_AFTER=$(openssl_sign_per_s after)
fi

# ---------------------------------------------------------------- summary
ratio() { awk -v r="$1" -v s="$SIGN_PER_S" 'BEGIN { printf "%.2f", r / s }'; }

{
  echo
  echo "=== wvs-auth token benchmark ==="
  echo "machine        : $CPUS CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), load average now $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "seeding        : $SEED_TOKENS deploy tokens in ${SEED_SECS}s ($SEED_MODE)"
  echo "openssl sign/s : $SIGN_PER_S  (openssl ${openssl_args[*]} $OPENSSL_ALG, before the load; the ratio uses this)"
  if [[ -n $SIGN_AFTER ]]; then
    echo "openssl after  : $SIGN_AFTER  ($(awk -v a="$SIGN_PER_S" -v b="$SIGN_AFTER" 'BEGIN {
      d = (b - a) / a * 100; printf "%+.0f%%", d
      if (d > 15 || d < -15) printf "; UNSTABLE baseline: the machine was not quiet, ratios are unreliable" }'))"
  fi
  echo "load           : wrk -t $THREADS -c $CONNECTIONS, GET /jwt/auth scope=$SCOPE as $LOAD_USER (answers checked: $WRK_CHECK)"
  for label in warn info; do
    [[ -n ${RPS[$label]:-} ]] || continue
    echo "--- RUST_LOG=$label ($([[ $label == warn ]] && echo "$DURATION" || echo "$INFO_DURATION"))"
    echo "tokens/s       : ${RPS[$label]}  (${RESPONSES[$label]} responses, all 200)"
    echo "p50 / p99      : ${P50[$label]} / ${P99[$label]}"
    echo "ratio          : $(ratio "${RPS[$label]}")  (tokens/s ÷ openssl sign/s; target ≥ 0.70, later ≥ 0.90)"
    echo "server peak RSS: ${RSS[$label]}  (VmHWM)"
    echo "CPU per token  : server ${SRV_US[$label]:-?} us, wrk ${WRK_US[$label]:-?} us; all $CPUS CPUs ${BUSY_PCT[$label]:-?}% busy during the run"
    echo "per-request log: ${LOGLINES[$label]} lines"
  done
  for label in warn info; do
    [[ -n ${RPS[$label]:-} ]] || continue
    echo "RESULT log=$label tokens_per_s=${RPS[$label]} p50=${P50[$label]} p99=${P99[$label]} openssl_sign_per_s=$SIGN_PER_S openssl_sign_per_s_after=${SIGN_AFTER:--} ratio=$(ratio "${RPS[$label]}") peak_rss_kb=${RSS[$label]%% *} seed_secs=$SEED_SECS server_cpu_us=${SRV_US[$label]:-} wrk_cpu_us=${WRK_US[$label]:-} machine_busy_pct=${BUSY_PCT[$label]:-}"
  done
}
