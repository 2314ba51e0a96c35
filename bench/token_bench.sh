#!/usr/bin/env bash
# Token-endpoint throughput benchmark for wvs-auth. See bench/README.md.
#
# Builds the release binary and seeds a throw-away database with SEED_TOKENS deploy tokens
# through the CLI. Then, for each log level (warn, then info), it starts the server once, checks
# one answer with curl and runs ROUNDS rounds of: `openssl speed rsa2048` (or ecdsap256) sign/s
# with OpenSSL's default kernel and, for RS256 on x86_64 CPUs with avx2, adx, bmi1 and bmi2, once
# more with the AVX2 RSAZ kernel (OPENSSL_ia32cap clears ADX); then wrk on GET /jwt/auth
# (bench/token.lua). Each round gives tokens/s, p50, p99, ratio = tokens/s ÷ openssl sign/s of
# the same round and ratio_same_kernel = tokens/s ÷ the faster kernel's sign/s; the summary
# prints the rounds and their medians, and the closed-loop latency floor C/X. Exits non-zero on
# any failure (build, seeding, a non-200 answer, a socket error, a leaked secret), never because
# the ratio is low.
#
# Environment:
#   KEY_ALG=RS256       signing key algorithm: RS256 (ratio to openssl rsa2048) or ES256 (to ecdsap256)
#   ROUNDS=3            openssl + wrk rounds per log level, against one server
#   DURATION=20s        wrk duration of each round of the main (RUST_LOG=warn) run
#   CONNECTIONS=64      wrk connections
#   THREADS=2           wrk threads
#   INFO_RUN=1          also run with RUST_LOG=info (the per-request log line); 0 to skip
#   INFO_DURATION=$DURATION
#   WRK_CHECK=status    status: wrk counts answers that are not 2xx/3xx; bodies: token.lua also
#                       looks at every body for an access_token (more wrk CPU)
#   SEED_TOKENS=10000   deploy tokens in the database besides the one used for the load
#   SEED_JOBS=2         parallel `token create` calls (xargs -P)
#   SEED_BUDGET_SECS=120  if the first 1,000 project a longer seeding, the rest is spread over
#                       several groups/projects with SEED_FAST_JOBS parallel calls
#   SEED_FAST_JOBS=2×CPUs
#   OPENSSL_SECONDS=5   `openssl speed -seconds` (sign and verify each take this long)
#   OPENSSL_MULTI=CPUs  `openssl speed -multi`
#   OPENSSL_ELAPSED=0   1 adds -elapsed (wall clock instead of CPU time as openssl's divisor)
#   KEEP_WORKDIR=0      1 keeps the temp dir (database, logs, wrk output) for inspection
#   WVS_AUTH_WORKERS    passed through to `serve` (default there: number of CPUs)
#   WVS_AUTH_BIN        benchmark this prebuilt binary; no cargo build
#   DATABASES=sqlite    the backends to measure, in this order, in one run against the same
#                       tokens: "sqlite", "postgres" or "sqlite postgres". PostgreSQL is a
#                       cluster of Debian's server started here (initdb, 127.0.0.1, as the
#                       postgres user when run as root), filled by `db copy` from the seeded
#                       SQLite database; the summary then gives postgres/sqlite tokens/s.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
INFO_RUN=${INFO_RUN:-1}
# status: wrk only counts non-2xx/3xx answers (lighter on the shared cores); bodies: token.lua
# checks every answer for an access_token. See bench/README.md.
WRK_CHECK=${WRK_CHECK:-status}
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
OPENSSL_SECONDS=${OPENSSL_SECONDS:-5}
OPENSSL_MULTI=${OPENSSL_MULTI:-$CPUS}
OPENSSL_ELAPSED=${OPENSSL_ELAPSED:-0}
# Clears the ADX bit (CPUID 7 EBX bit 19): OpenSSL then signs RSA-2048 with the AVX2 RSAZ
# kernel instead of the MULX/ADX one.
OPENSSL_AVX2_CAP="~0:~0x80000"
KEEP_WORKDIR=${KEEP_WORKDIR:-0}
DATABASES=${DATABASES:-sqlite}

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
# WVS_AUTH_SERVICE or WVS_AUTH_LISTEN must not change what is measured. WVS_AUTH_BIN is the
# script's own setting; it is read before clear_wvs_env (bench/common.sh) clears it.
PREBUILT_BIN=${WVS_AUTH_BIN:-}
clear_wvs_env

[[ $SEED_TOKENS =~ ^[0-9]+$ ]] || die "SEED_TOKENS must be a number"
[[ $CONNECTIONS =~ ^[0-9]+$ && $THREADS =~ ^[0-9]+$ ]] || die "CONNECTIONS and THREADS must be numbers"
((CONNECTIONS >= THREADS)) || die "CONNECTIONS must be >= THREADS (wrk needs one connection per thread)"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a number >= 1"
[[ $OPENSSL_SECONDS =~ ^[1-9][0-9]*$ ]] || die "OPENSSL_SECONDS must be a whole number of seconds >= 1"
[[ $WRK_CHECK == status || $WRK_CHECK == bodies ]] || die "WRK_CHECK must be status or bodies"
for db in $DATABASES; do
  [[ $db == sqlite || $db == postgres ]] || die "DATABASES must list sqlite and/or postgres"
done

# ---------------------------------------------------------------- tools
[[ -n $PREBUILT_BIN ]] || command -v cargo >/dev/null || die "cargo is not installed"
for tool in curl openssl awk xargs; do
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

PG_DIR=""
PG_BIN=""
cleanup() {
  local rc=$?
  stop_server
  if [[ -n $PG_DIR ]]; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
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
if [[ -n $PREBUILT_BIN ]]; then
  # A prebuilt binary (e.g. the previous commit's, for an A/B in one run): no build.
  BIN=$PREBUILT_BIN
  log "no build: benchmarking WVS_AUTH_BIN=$BIN"
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
log "keys init, group bench, project bench/app and the load token in $WORK"
# The token the load uses: read + write registry on bench/app, default username.
make_load_token "$KEY_ALG"

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

# ---------------------------------------------------------------- PostgreSQL
# as_pg CMD...: runs CMD as the postgres user when this script runs as root (the server
# refuses root), else as the caller.
as_pg() {
  if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
# pg_ticks: CPU time of the PostgreSQL cluster (postmaster, its children, and the children it
# has reaped), clock ticks; 0 without a cluster.
pg_ticks() {
  [[ -n $PG_DIR && -f $PG_DIR/data/postmaster.pid ]] || { echo 0; return; }
  local pm
  pm=$(head -n 1 "$PG_DIR/data/postmaster.pid")
  { echo "$pm"; pgrep -P "$pm" || true; } | while read -r pid; do
    awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pid/stat" 2>/dev/null || true
  done | awk '{ s += $1 } END { print s + 0 }'
}
PG_URL=""
if [[ " $DATABASES " == *" postgres "* ]]; then
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [[ -x $PG_BIN/initdb ]] || die "PostgreSQL is not installed (apt-get install postgresql)"
  PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/wvs-bench-pg.XXXXXX")
  [[ $(id -u) != 0 ]] || chown postgres: "$PG_DIR"
  PG_PORT=$(free_port) || die "no free port found"
  log "PostgreSQL: initdb in $PG_DIR, port $PG_PORT"
  as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres >"$WORK/initdb.log" 2>&1 ||
    die "initdb failed: $(tail -n 3 "$WORK/initdb.log")"
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=100" start >/dev/null ||
    die "PostgreSQL did not start: $(tail -n 5 "$PG_DIR/server.log")"
  as_pg "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "CREATE DATABASE wvs" postgres ||
    die "CREATE DATABASE failed"
  PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/wvs"
  copy_start=$(now)
  wvs db copy --to "$PG_URL" >"$WORK/db-copy.out" 2>&1 || die "db copy failed: $(cat "$WORK/db-copy.out")"
  log "db copy into PostgreSQL in $(elapsed "$copy_start")s: $(cat "$WORK/db-copy.out")"
fi

# ---------------------------------------------------------------- openssl baseline
openssl_args=(speed -multi "$OPENSSL_MULTI" -seconds "$OPENSSL_SECONDS")
if [[ $OPENSSL_ELAPSED == 1 ]]; then openssl_args+=(-elapsed); fi

# The second baseline, with the AVX2 RSAZ kernel: only where it exists and OpenSSL would not
# pick it by itself (RSA-2048 on x86_64 with AVX2, and ADX/BMI making it prefer MULX/ADX).
AVX2_KERNEL=0
if [[ $KEY_ALG != RS256 ]]; then
  AVX2_NOTE="not measured (KEY_ALG=$KEY_ALG; the kernel choice concerns RSA)"
elif [[ $(uname -m) != x86_64 ]]; then
  AVX2_NOTE="not measured ($(uname -m), not x86_64)"
else
  cpu_flags=" $(awk -F': ' '/^flags/ { print $2; exit }' /proc/cpuinfo) "
  missing=""
  for flag in avx2 adx bmi1 bmi2; do
    [[ $cpu_flags == *" $flag "* ]] || missing+=" $flag"
  done
  if [[ -z $missing ]]; then
    AVX2_KERNEL=1
    AVX2_NOTE="OPENSSL_ia32cap=$OPENSSL_AVX2_CAP (ADX cleared: AVX2 RSAZ instead of MULX/ADX)"
  else
    AVX2_NOTE="not measured (CPU flags lack$missing)"
  fi
fi
CALLER_IA32CAP=${OPENSSL_ia32cap:-}
if [[ -n $CALLER_IA32CAP ]]; then
  log "OPENSSL_ia32cap=$CALLER_IA32CAP is set: it applies to the server and to the default openssl baseline"
fi

run_openssl() { openssl "${openssl_args[@]}" "$OPENSSL_ALG" >"$1" 2>"$2"; }

# openssl_sign_per_s NAME KERNEL: runs openssl speed for the key's algorithm with OpenSSL's
# default kernel (KERNEL=default) or the AVX2 RSAZ one (avx2) and prints its sign/s.
openssl_sign_per_s() {
  local name=$1 kernel=$2 out=$WORK/openssl-$1.out err=$WORK/openssl-$1.err rate
  log "openssl ${openssl_args[*]} $OPENSSL_ALG ($name, $kernel kernel, takes ~$((2 * OPENSSL_SECONDS))s)"
  if [[ $kernel == avx2 ]]; then
    OPENSSL_ia32cap=$OPENSSL_AVX2_CAP run_openssl "$out" "$err" ||
      die "openssl speed failed: $(tail -n 3 "$err")"
  else
    run_openssl "$out" "$err" || die "openssl speed failed: $(tail -n 3 "$err")"
  fi
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
  log "openssl $OPENSSL_ALG sign/s ($name, $kernel kernel): $rate"
  printf '%s' "$rate"
}

# ---------------------------------------------------------------- load runs
# Per log level (key: warn, info): peak RSS, log lines, duration.
declare -A RSS LOGLINES LEVEL_DURATION
# Per round (key: LEVEL.ROUND, e.g. warn.2).
declare -A SIGN SIGN_AVX2 RPS P50_US P99_US RESPONSES RATIO RATIO_SK SRV_US WRK_US BUSY_PCT DB_US
LEVELS=()
# CPU time in clock ticks (cpu_ticks, busy_ticks, total_ticks: bench/common.sh).
HZ=$(getconf CLK_TCK)

# run_round LEVEL ROUND URL DURATION SERVER_LOG: the openssl baseline(s), then one wrk run
# against the running server. Fails the whole run on any bad answer or socket error.
run_round() {
  local level=$1 round=$2 url=$3 duration=$4 slog=$5
  local key=$level.$round tag="[$level round $round/$ROUNDS]" out check lat rate n sign_max
  # Both kernels just before the load; their order alternates between rounds so that a
  # machine speeding up or slowing down does not favour one of them.
  if ((AVX2_KERNEL && round % 2 == 0)); then
    rate=$(openssl_sign_per_s "$key-avx2" avx2)
    SIGN_AVX2[$key]=$rate
    rate=$(openssl_sign_per_s "$key" default)
    SIGN[$key]=$rate
  else
    rate=$(openssl_sign_per_s "$key" default)
    SIGN[$key]=$rate
    if ((AVX2_KERNEL)); then
      rate=$(openssl_sign_per_s "$key-avx2" avx2)
      SIGN_AVX2[$key]=$rate
    fi
  fi

  out=$WORK/wrk-$key.out
  log "$tag wrk -t $THREADS -c $CONNECTIONS -d $duration --latency"
  local srv0 busy0 total0 srv1 busy1 total1 db0 db1
  srv0=$(cpu_ticks "$SERVER_PID") busy0=$(busy_ticks) total0=$(total_ticks) db0=$(pg_ticks)
  if ! WVS_BENCH_USER=$LOAD_USER WVS_BENCH_SECRET=$LOAD_SECRET WVS_BENCH_SERVICE=$SERVICE \
    WVS_BENCH_SCOPE=$SCOPE WVS_BENCH_CHECK=$WRK_CHECK /usr/bin/time -f '%U %S' -o "$WORK/wrk-time-$key" \
    wrk -t "$THREADS" -c "$CONNECTIONS" -d "$duration" --latency \
    -s "$LUA" "$url" >"$out" 2>&1; then
    cat "$out" >&2
    die "$tag wrk failed"
  fi
  srv1=$(cpu_ticks "$SERVER_PID") busy1=$(busy_ticks) total1=$(total_ticks) db1=$(pg_ticks)
  sed 's/^/    /' "$out" >&2
  kill -0 "$SERVER_PID" 2>/dev/null || die "$tag server died during the run: $(tail -n 5 "$slog")"

  check=$(grep '^wrk-check:' "$out") || die "$tag token.lua printed no check line"
  lat=$(grep '^wrk-latency-us:' "$out") || die "$tag token.lua printed no latency line"
  RESPONSES[$key]=$(sed -n 's/.* responses=\([0-9]*\).*/\1/p' <<<"$check")
  RPS[$key]=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  # token.lua's figures come from the same histogram as wrk's --latency table, in microseconds.
  P50_US[$key]=$(sed -n 's/.*p50=\([0-9]*\).*/\1/p' <<<"$lat")
  P99_US[$key]=$(sed -n 's/.*p99=\([0-9]*\).*/\1/p' <<<"$lat")

  [[ -n ${RPS[$key]} ]] || die "$tag no Requests/sec in wrk output"
  n=${RESPONSES[$key]:-0}
  ((n > 0)) || die "$tag no responses at all"
  [[ $check == *" non200=0 "* ]] || die "$tag non-200 answers: $check"
  [[ $check == *" bad_body=0 "* ]] || die "$tag 200 answers without access_token: $check"
  [[ $check == *"errors=connect:0,read:0,write:0,timeout:0"* ]] || die "$tag socket errors: $check"

  # CPU per token: the server's and wrk's (both share the machine's cores), and how busy
  # the whole machine was meanwhile (anything above server + wrk is someone else).
  SRV_US[$key]=$(awk -v t=$((srv1 - srv0)) -v hz="$HZ" -v n="$n" 'BEGIN { printf "%.0f", t / hz / n * 1e6 }')
  WRK_US[$key]=$(awk -v n="$n" '{ printf "%.0f", ($1 + $2) / n * 1e6 }' "$WORK/wrk-time-$key")
  # The database's own CPU (PostgreSQL runs beside the server; SQLite is inside it).
  DB_US[$key]=$(awk -v t=$((db1 - db0)) -v hz="$HZ" -v n="$n" 'BEGIN { printf "%.0f", t / hz / n * 1e6 }')
  BUSY_PCT[$key]=$(awk -v b=$((busy1 - busy0)) -v t=$((total1 - total0)) 'BEGIN { if (t) printf "%.0f", b / t * 100 }')

  RATIO[$key]=$(awk -v r="${RPS[$key]}" -v s="${SIGN[$key]}" 'BEGIN { printf "%.4f", r / s }')
  if [[ -n ${SIGN_AVX2[$key]:-} ]]; then
    sign_max=$(awk -v a="${SIGN[$key]}" -v b="${SIGN_AVX2[$key]}" 'BEGIN { print (b > a ? b : a) }')
    RATIO_SK[$key]=$(awk -v r="${RPS[$key]}" -v s="$sign_max" 'BEGIN { printf "%.4f", r / s }')
  fi
  log "$tag tokens/s ${RPS[$key]}, p99 $(ms "${P99_US[$key]}") ms, ratio $(fmt2 "${RATIO[$key]}")"
}

# run_level LABEL LOG_LEVEL DURATION [ARGS...]: one server with RUST_LOG=LOG_LEVEL (and
# ARGS, e.g. --database-url), one checked answer, ROUNDS rounds, all recorded under LABEL.
run_level() {
  local level=$1 log_level=$2 duration=$3 port url slog round
  shift 3
  LEVELS+=("$level")
  LEVEL_DURATION[$level]=$duration
  port=$(free_port) || die "no free port found"
  url="http://127.0.0.1:$port"
  slog=$WORK/serve-$level.log
  log "[$level] wvs-auth serve on 127.0.0.1:$port with RUST_LOG=$log_level $*"
  # The binary itself, not the wvs function, so that $! is the server's pid.
  RUST_LOG=$log_level "$BIN" --data-dir "$DATA" --keys-dir "$KEYS" "$@" serve --listen "127.0.0.1:$port" \
    >"$slog" 2>&1 &
  SERVER_PID=$!
  wait_healthy "$url" "$SERVER_PID" "$slog"
  # One request by hand first (bench/common.sh): the grant wrk then asks for is pull,push.
  check_token_grant "$url" "$LOAD_USER" "$LOAD_SECRET" "$WORK/first-$level.json"

  for ((round = 1; round <= ROUNDS; round++)); do
    run_round "$level" "$round" "$url" "$duration" "$slog"
  done

  RSS[$level]=$(awk '/^VmHWM:/ { print $2 " " $3 }' "/proc/$SERVER_PID/status")
  stop_server
  LOGLINES[$level]=$(grep -c ' token ip=' "$slog" || true)
  if grep -qF -- "$LOAD_SECRET" "$slog"; then
    die "[$level] the deploy-token secret appears in the server log (SPEC §1: never logged)"
  fi
}

# median_fmt FORMAT VALUE...: the median of the numeric VALUEs (the mean of the middle two for an
# even count) printed with FORMAT, or "-" if there is none.
median_fmt() {
  local fmt=$1
  shift
  printf '%s\n' "$@" | awk -v fmt="$fmt" '
    /^[0-9]+(\.[0-9]+)?$/ { v[++n] = $1 + 0 }
    END {
      if (!n) { print "-"; exit }
      for (i = 2; i <= n; i++) {
        x = v[i]
        for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]
        v[j + 1] = x
      }
      printf fmt "\n", (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2)
    }'
}
# ms MICROSECONDS: milliseconds with 2 decimals ("-" stays "-").
ms() { awk -v u="$1" 'BEGIN { if (u ~ /^[0-9.]+$/) printf "%.2f", u / 1000; else printf "-" }'; }
# fmt2 NUMBER: 2 decimals ("-" or empty gives "-").
fmt2() { awk -v x="${1:-}" 'BEGIN { if (x ~ /^[0-9.]+$/) printf "%.2f", x; else printf "-" }'; }

for db in $DATABASES; do
  db_args=()
  label_prefix=""
  if [[ $DATABASES != sqlite ]]; then label_prefix="$db-"; fi
  if [[ $db == postgres ]]; then db_args=(--database-url "$PG_URL"); fi
  run_level "${label_prefix}warn" warn "$DURATION" "${db_args[@]}"
  if [[ $INFO_RUN == 1 ]]; then
    run_level "${label_prefix}info" info "$INFO_DURATION" "${db_args[@]}"
  fi
done

# ---------------------------------------------------------------- summary
# Medians per level (key: LEVEL).
declare -A M_RPS M_P50 M_P99 M_SIGN M_SIGN_AVX2 M_RATIO M_RATIO_SK M_SRV M_WRK M_BUSY M_FLOOR M_DB
declare -A SIGN_RANGE ALL_RESPONSES AVX2_SUFFIX
for level in "${LEVELS[@]}"; do
  declare -a rps=() p50=() p99=() sign=() sign_avx2=() ratio=() ratio_sk=() srv=() wrk=() busy=() dbcpu=()
  total=0
  for ((round = 1; round <= ROUNDS; round++)); do
    key=$level.$round
    rps+=("${RPS[$key]}") p50+=("${P50_US[$key]}") p99+=("${P99_US[$key]}")
    sign+=("${SIGN[$key]}") sign_avx2+=("${SIGN_AVX2[$key]:-}")
    ratio+=("${RATIO[$key]}") ratio_sk+=("${RATIO_SK[$key]:-}")
    srv+=("${SRV_US[$key]:-}") wrk+=("${WRK_US[$key]:-}") busy+=("${BUSY_PCT[$key]:-}") dbcpu+=("${DB_US[$key]:-}")
    total=$((total + ${RESPONSES[$key]}))
  done
  ALL_RESPONSES[$level]=$total
  M_RPS[$level]=$(median_fmt '%.2f' "${rps[@]}")
  M_P50[$level]=$(median_fmt '%.0f' "${p50[@]}")
  M_P99[$level]=$(median_fmt '%.0f' "${p99[@]}")
  M_SIGN[$level]=$(median_fmt '%.1f' "${sign[@]}")
  M_SIGN_AVX2[$level]=$(median_fmt '%.1f' "${sign_avx2[@]}")
  M_RATIO[$level]=$(median_fmt '%.4f' "${ratio[@]}")
  M_RATIO_SK[$level]=$(median_fmt '%.4f' "${ratio_sk[@]}")
  M_SRV[$level]=$(median_fmt '%.0f' "${srv[@]}")
  M_WRK[$level]=$(median_fmt '%.0f' "${wrk[@]}")
  M_BUSY[$level]=$(median_fmt '%.0f' "${busy[@]}")
  M_DB[$level]=$(median_fmt '%.0f' "${dbcpu[@]}")
  # Closed loop (Little's law): C connections, X tokens/s, mean latency = C/X.
  M_FLOOR[$level]=$(awk -v c="$CONNECTIONS" -v x="${M_RPS[$level]}" 'BEGIN { printf "%.2f", c / x * 1000 }')
  if [[ ${M_SIGN_AVX2[$level]} == - ]]; then
    AVX2_SUFFIX[$level]=""
  else
    AVX2_SUFFIX[$level]="; avx2 kernel ${M_SIGN_AVX2[$level]} median"
  fi
  SIGN_RANGE[$level]=$(printf '%s\n' "${sign[@]}" | awk '
    NR == 1 || $1 < lo { lo = $1 } NR == 1 || $1 > hi { hi = $1 }
    END { printf "%.0f..%.0f (spread %.0f%% of the lower)", lo, hi, (hi - lo) / lo * 100 }')
done
# For p99 <= 10 ms a closed loop of C connections needs X >= C / 0.010 tokens/s, that is
# C / 0.010 / 0.9 sign/s at ratio 0.9.
NEED_RPS=$(awk -v c="$CONNECTIONS" 'BEGIN { printf "%.0f", c / 0.010 }')
NEED_SIGN=$(awk -v c="$CONNECTIONS" 'BEGIN { printf "%.0f", c / 0.010 / 0.9 }')
if [[ $WRK_CHECK == bodies ]]; then ANSWERS="all 200 with an access_token"; else ANSWERS="all 2xx/3xx"; fi

{
  echo
  echo "=== wvs-auth token benchmark ==="
  echo "machine          : $CPUS CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), load average now $(cut -d' ' -f1-3 /proc/loadavg)"
  [[ -z $CALLER_IA32CAP ]] || echo "OPENSSL_ia32cap  : $CALLER_IA32CAP from the environment (server and default openssl baseline)"
  echo "seeding          : $SEED_TOKENS deploy tokens in ${SEED_SECS}s ($SEED_MODE)"
  echo "openssl          : openssl ${openssl_args[*]} $OPENSSL_ALG before each round's wrk run (server idle)"
  echo "avx2 kernel      : $AVX2_NOTE"
  echo "load             : wrk -t $THREADS -c $CONNECTIONS, GET /jwt/auth scope=$SCOPE as $LOAD_USER (answers checked: $WRK_CHECK)"
  for level in "${LEVELS[@]}"; do
    echo "--- $level: one server, $ROUNDS round(s) of openssl then wrk -d ${LEVEL_DURATION[$level]}"
    printf '%5s %9s %9s %9s %7s %7s %6s %6s %6s %6s %5s\n' \
      round openssl avx2 tokens/s 'p50 ms' 'p99 ms' ratio same-k 'srv us' 'wrk us' busy
    for ((round = 1; round <= ROUNDS; round++)); do
      key=$level.$round
      printf '%5s %9.0f %9s %9.0f %7s %7s %6s %6s %6s %6s %5s\n' "$round" "${SIGN[$key]}" \
        "$(awk -v x="${SIGN_AVX2[$key]:--}" 'BEGIN { if (x ~ /^[0-9.]+$/) printf "%.0f", x; else printf "-" }')" \
        "${RPS[$key]}" "$(ms "${P50_US[$key]}")" "$(ms "${P99_US[$key]}")" "$(fmt2 "${RATIO[$key]}")" \
        "$(fmt2 "${RATIO_SK[$key]:-}")" "${SRV_US[$key]:--}" "${WRK_US[$key]:--}" "${BUSY_PCT[$key]:--}%"
    done
    echo "tokens/s         : ${M_RPS[$level]} median  (${ALL_RESPONSES[$level]} responses in all, $ANSWERS)"
    echo "ratio            : $(fmt2 "${M_RATIO[$level]}") median  (tokens/s ÷ openssl sign/s of the same round; target ≥ 0.70, later ≥ 0.90)"
    if [[ ${M_RATIO_SK[$level]} == - ]]; then
      echo "ratio_same_kernel: -  (see avx2 kernel above)"
    else
      echo "ratio_same_kernel: $(fmt2 "${M_RATIO_SK[$level]}") median  (tokens/s ÷ the faster of the two openssl kernels)"
    fi
    echo "p50 / p99        : $(ms "${M_P50[$level]}") / $(ms "${M_P99[$level]}") ms median"
    echo "p99 floor (C/X)  : ${M_FLOOR[$level]} ms  (mean latency of $CONNECTIONS connections at the median tokens/s; p99 ≤ 10 ms needs ≥ $NEED_RPS tokens/s = $NEED_SIGN sign/s at ratio 0.9)"
    echo "openssl sign/s   : ${M_SIGN[$level]} median, ${SIGN_RANGE[$level]}${AVX2_SUFFIX[$level]}"
    echo "server peak RSS  : ${RSS[$level]}  (VmHWM)"
    echo "CPU per token    : server ${M_SRV[$level]} us, PostgreSQL ${M_DB[$level]} us, wrk ${M_WRK[$level]} us (medians); all $CPUS CPUs ${M_BUSY[$level]}% busy during the runs"
    echo "per-request log  : ${LOGLINES[$level]} lines"
  done
  for level in "${LEVELS[@]}"; do
    for ((round = 1; round <= ROUNDS; round++)); do
      key=$level.$round
      echo "ROUND log=$level round=$round tokens_per_s=${RPS[$key]} p99=$(ms "${P99_US[$key]}")ms openssl=${SIGN[$key]} openssl_avx2=${SIGN_AVX2[$key]:--} ratio=$(fmt2 "${RATIO[$key]}") ratio_same_kernel=$(fmt2 "${RATIO_SK[$key]:-}") p50=$(ms "${P50_US[$key]}")ms server_cpu_us=${SRV_US[$key]:-} wrk_cpu_us=${WRK_US[$key]:-} machine_busy_pct=${BUSY_PCT[$key]:-}"
    done
  done
  if [[ " ${LEVELS[*]} " == *" sqlite-warn "* && " ${LEVELS[*]} " == *" postgres-warn "* ]]; then
    echo "COMPARE postgres/sqlite tokens_per_s=$(awk -v p="${M_RPS[postgres-warn]}" -v s="${M_RPS[sqlite-warn]}" 'BEGIN { printf "%.2f", p / s }') (RUST_LOG=warn medians; target ≥ 0.85) p99 postgres=$(ms "${M_P99[postgres-warn]}")ms sqlite=$(ms "${M_P99[sqlite-warn]}")ms server_cpu_us postgres=${M_SRV[postgres-warn]}+${M_DB[postgres-warn]}(database) sqlite=${M_SRV[sqlite-warn]}"
  fi
  for level in "${LEVELS[@]}"; do
    echo "RESULT log=$level rounds=$ROUNDS tokens_per_s=${M_RPS[$level]} p50=$(ms "${M_P50[$level]}")ms p99=$(ms "${M_P99[$level]}")ms p99_floor_ms=${M_FLOOR[$level]} openssl_sign_per_s=${M_SIGN[$level]} openssl_avx2_sign_per_s=${M_SIGN_AVX2[$level]} ratio=$(fmt2 "${M_RATIO[$level]}") ratio_same_kernel=$(fmt2 "${M_RATIO_SK[$level]}") peak_rss_kb=${RSS[$level]%% *} seed_secs=$SEED_SECS server_cpu_us=${M_SRV[$level]} wrk_cpu_us=${M_WRK[$level]} machine_busy_pct=${M_BUSY[$level]}"
  done
}
