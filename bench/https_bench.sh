#!/usr/bin/env bash
# HTTPS token benchmark (issue 17 item 6): bench/token.lua's token request as clients send it
# over HTTPS, beside plain HTTP, against one build in one run. Every row is tokens/s (or
# handshakes/s), p99 and the server's CPU per request (utime+stime from /proc/PID/stat):
#
#   http-keepalive         wrk, plain HTTP, keep-alive
#   https-keepalive        wrk over TLS, keep-alive (ECDSA P-256 certificate)
#   http-new               ab: a new TCP connection per token, no TLS
#   https-new-ecdsa        ab: a new TLS connection per token, full handshake (ab never resumes)
#   https-new-rsa          the same with an RSA-2048 certificate
#   https-resumed-ecdsa    wrk with `Connection: close`: a new TLS connection per token,
#                          resumed from the previous connection's ticket
#   https-resumed-rsa      the same with the RSA-2048 certificate
#   handshake-new-ecdsa    openssl s_time -new on /-/health: full handshakes, one at a time
#   handshake-reuse-ecdsa  openssl s_time -reuse: resumed handshakes
#   handshake-new-rsa, handshake-reuse-rsa
#
# Three servers (plain, ECDSA, RSA) run side by side from the same binary and data; a private
# CA and both leaf certificates for 127.0.0.1 are made with openssl in the temp dir. Before the
# rows: `openssl speed` of the operations a handshake and a token cost, and a probe of which
# clients resume TLS sessions at all (bench/tls_resume_probe.py). BASELINE_BIN=path also
# runs every TLS row against that build (e.g. the previous commit's), alternating, for a
# before/after in one run. See bench/README.md ("HTTPS token benchmark").
#
#   bash bench/https_bench.sh                              # ~6 min + build (~9 with BASELINE_BIN)
#   ROUNDS=1 DURATION=2s NEW_REQUESTS=300 STIME_SECONDS=1 OPENSSL_SECONDS=1 bash bench/https_bench.sh  # smoke
#
# Environment:
#   ROUNDS=3            rounds of all rows, against the same servers
#   DURATION=10s        wrk duration of each wrk row
#   CONNECTIONS=64      wrk connections and ab concurrency
#   THREADS=2           wrk threads
#   NEW_REQUESTS=5000   ab requests (= connections) per ab row
#   STIME_SECONDS=5     openssl s_time -time per s_time row
#   OPENSSL_SECONDS=3   openssl speed -seconds (per operation; 5 of them)
#   WRK_CHECK=status    as in token_bench.sh: status, or bodies (token.lua checks every body)
#   KEY_ALG=RS256       token signing key (RS256 or ES256)
#   RESUME_PROBE=1      0 skips the resumption probe
#   BASELINE_BIN        a second wvs-auth binary for the TLS rows (labelled `@base`)
#   KEEP_WORKDIR=0      1 keeps certificates, logs and client output
#   WVS_AUTH_WORKERS    passed through to `serve` (default there: number of CPUs)
#   WVS_AUTH_BIN        benchmark this prebuilt binary; no cargo build
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
NEW_REQUESTS=${NEW_REQUESTS:-5000}
STIME_SECONDS=${STIME_SECONDS:-5}
OPENSSL_SECONDS=${OPENSSL_SECONDS:-3}
WRK_CHECK=${WRK_CHECK:-status}
KEY_ALG=${KEY_ALG:-RS256}
RESUME_PROBE=${RESUME_PROBE:-1}
KEEP_WORKDIR=${KEEP_WORKDIR:-0}
BASELINE_BIN=${BASELINE_BIN:-}

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
# shellcheck source=bench/common.sh
source "$REPO/bench/common.sh"

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a number >= 1"
[[ $CONNECTIONS =~ ^[0-9]+$ && $THREADS =~ ^[0-9]+$ ]] && ((CONNECTIONS >= THREADS)) ||
  die "CONNECTIONS and THREADS must be numbers, CONNECTIONS >= THREADS"
[[ $NEW_REQUESTS =~ ^[1-9][0-9]*$ && $STIME_SECONDS =~ ^[1-9][0-9]*$ && $OPENSSL_SECONDS =~ ^[1-9][0-9]*$ ]] ||
  die "NEW_REQUESTS, STIME_SECONDS and OPENSSL_SECONDS must be whole numbers >= 1"
((NEW_REQUESTS >= CONNECTIONS)) || die "NEW_REQUESTS must be >= CONNECTIONS (ab's -n and -c)"
[[ $WRK_CHECK == status || $WRK_CHECK == bodies ]] || die "WRK_CHECK must be status or bodies"
[[ $KEY_ALG == RS256 || $KEY_ALG == ES256 ]] || die "KEY_ALG must be RS256 or ES256"
if [[ -n $BASELINE_BIN ]]; then
  [[ -x $BASELINE_BIN ]] || die "BASELINE_BIN=$BASELINE_BIN is not executable"
fi

for tool in wrk ab openssl curl python3 awk /usr/bin/time; do
  command -v "$tool" >/dev/null ||
    die "$tool is not installed (Debian: apt-get install wrk apache2-utils openssl curl python3 time; h2load, optional, is nghttp2-client)"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/wvs-https.XXXXXX")
DATA=$WORK/data
KEYS=$WORK/keys
TLS=$WORK/tls
PROBE_PID=""
declare -A SRV_PID SRV_URL SRV_PORT
cleanup() {
  local rc=$? name
  for name in "${!SRV_PID[@]}"; do
    SERVER_PID=${SRV_PID[$name]} stop_server
  done
  [[ -z $PROBE_PID ]] || kill "$PROBE_PID" 2>/dev/null || true
  if [[ $KEEP_WORKDIR == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average: $LOAD_START on $CPUS CPUs (figures mean little on a busy machine)"
build_release
clear_wvs_env
wvs() { "$BIN" --data-dir "$DATA" --keys-dir "$KEYS" "$@"; }
make_load_token "$KEY_ALG"
export WVS_BENCH_USER=$LOAD_USER WVS_BENCH_SECRET=$LOAD_SECRET WVS_BENCH_CHECK=$WRK_CHECK
AUTH_B64=$(printf '%s:%s' "$LOAD_USER" "$LOAD_SECRET" | base64 -w0)
TOKEN_PATH="/jwt/auth?service=container_registry&scope=$(urlencode "repository:bench/app:pull,push")&account=$(urlencode "$LOAD_USER")"

# ---------------------------------------------------------------- certificates
# A private CA (P-256) and two leaves for 127.0.0.1 it signs: ECDSA P-256 and RSA-2048. The
# server sends the leaf alone (a public CA's chain would add an intermediate's bytes, not
# signatures).
mkdir -p "$TLS"
printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost' 'basicConstraints=CA:FALSE' \
  'keyUsage=critical,digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth' >"$TLS/leaf.ext"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -keyout "$TLS/ca.key" -out "$TLS/ca.pem" -subj "/CN=wvs-auth bench CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
  >"$TLS/openssl.log" 2>&1 || die "openssl req (CA) failed: $(tail -n 3 "$TLS/openssl.log")"
for kind in ecdsa rsa; do
  if [[ $kind == ecdsa ]]; then newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256); else newkey=(-newkey rsa:2048); fi
  { openssl req -new "${newkey[@]}" -nodes -keyout "$TLS/$kind.key" -out "$TLS/$kind.csr" -subj "/CN=127.0.0.1" &&
    openssl x509 -req -in "$TLS/$kind.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" -CAcreateserial \
      -days 2 -extfile "$TLS/leaf.ext" -out "$TLS/$kind.pem"; } >>"$TLS/openssl.log" 2>&1 ||
    die "openssl ($kind leaf) failed: $(tail -n 3 "$TLS/openssl.log")"
done
CA_ARGS=(--cacert "$TLS/ca.pem")

# ---------------------------------------------------------------- servers
# start_target NAME BINARY [ecdsa|rsa]: wvs-auth serve on a free port, HTTPS with that leaf
# if given; waits for /-/health and checks one token by hand (curl trusts the CA).
start_target() {
  local name=$1 bin=$2 kind=${3:-} port slog scheme=http tls_args=() curl_args=()
  port=$(free_port) || die "no free port"
  slog=$WORK/serve-$name.log
  if [[ -n $kind ]]; then
    tls_args=(--tls-cert "$TLS/$kind.pem" --tls-key "$TLS/$kind.key")
    scheme=https
    curl_args=("${CA_ARGS[@]}")
  fi
  RUST_LOG=warn "$bin" --data-dir "$DATA" --keys-dir "$KEYS" serve --listen "127.0.0.1:$port" \
    "${tls_args[@]}" >"$slog" 2>&1 &
  SRV_PID[$name]=$!
  SRV_PORT[$name]=$port
  SRV_URL[$name]=$scheme://127.0.0.1:$port
  wait_healthy "${SRV_URL[$name]}" "${SRV_PID[$name]}" "$slog" "${curl_args[@]}"
  check_token_grant "${SRV_URL[$name]}" "$LOAD_USER" "$LOAD_SECRET" "$WORK/first-$name.json" "${curl_args[@]}"
  log "[$name] $(basename "$bin") serving ${SRV_URL[$name]} (pid ${SRV_PID[$name]})"
}
start_target http "$BIN"
start_target ecdsa "$BIN" ecdsa
start_target rsa "$BIN" rsa
if [[ -n $BASELINE_BIN ]]; then
  start_target ecdsa@base "$BASELINE_BIN" ecdsa
  start_target rsa@base "$BASELINE_BIN" rsa
fi

# ---------------------------------------------------------------- what the operations cost
# One process (not -multi): per-operation CPU time on one core, the units of a handshake.
log "openssl speed -seconds $OPENSSL_SECONDS rsa2048 ecdsap256 ecdhx25519 (servers idle, ~$((5 * OPENSSL_SECONDS))s)"
openssl speed -seconds "$OPENSSL_SECONDS" rsa2048 ecdsap256 ecdhx25519 >"$WORK/openssl-speed.out" 2>&1 ||
  die "openssl speed failed: $(tail -n 3 "$WORK/openssl-speed.out")"
# OpenSSL 3.x:   rsa 2048 bits 0.000200s 0.000012s   5009.0  82128.0
#                 256 bits ecdsa (nistp256)   0.0000s   0.0000s  68959.6  23281.0
#                 253 bits ecdh (X25519)   0.0000s  33000.0
speed() {
  awk -v what="$1" '
    what == "rsa_sign" && $1 == "rsa" && $2 == "2048" && $3 == "bits" { print $(NF - 1); exit }
    what == "rsa_verify" && $1 == "rsa" && $2 == "2048" && $3 == "bits" { print $NF; exit }
    what == "ecdsa_sign" && /ecdsa \(nistp256\)/ { print $(NF - 1); exit }
    what == "ecdsa_verify" && /ecdsa \(nistp256\)/ { print $NF; exit }
    what == "x25519" && /ecdh \(X25519\)/ { print $NF; exit }
  ' "$WORK/openssl-speed.out"
}
declare -A OP_US
for op in rsa_sign rsa_verify ecdsa_sign ecdsa_verify x25519; do
  rate=$(speed "$op")
  [[ $rate =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "no $op figure in openssl speed output: $(cat "$WORK/openssl-speed.out")"
  OP_US[$op]=$(awk -v r="$rate" 'BEGIN { printf "%.1f", 1e6 / r }')
done
log "openssl µs per operation: rsa2048 sign ${OP_US[rsa_sign]}, verify ${OP_US[rsa_verify]}; P-256 sign ${OP_US[ecdsa_sign]}, verify ${OP_US[ecdsa_verify]}; X25519 ${OP_US[x25519]}"

# ---------------------------------------------------------------- which clients resume
# Against an OpenSSL server that issues session ids and tickets (tls_resume_probe.py), each
# client as the rows run it: how many of its handshakes resumed.
declare -A PROBE
probe_resumption() {
  local port="" i url
  python3 "$BENCH_DIR/tls_resume_probe.py" "$TLS/ecdsa.pem" "$TLS/ecdsa.key" "$WORK/probe.port" \
    >"$WORK/probe.log" 2>&1 &
  PROBE_PID=$!
  for i in $(seq 1 100); do
    [[ -s $WORK/probe.port ]] && port=$(cat "$WORK/probe.port") && break
    kill -0 "$PROBE_PID" 2>/dev/null || die "tls_resume_probe.py exited: $(tail -n 5 "$WORK/probe.log")"
    sleep 0.1
  done
  [[ -n $port ]] || die "tls_resume_probe.py did not start"
  url=https://127.0.0.1:$port
  probe_stats() { curl -s "${CA_ARGS[@]}" "$url/-/stats"; }
  # probe_client NAME CMD...: "resumed/handshakes" of CMD (the reading's own handshake is not counted).
  probe_client() {
    local name=$1 before after
    shift
    before=$(probe_stats) || die "probe: no stats"
    "$@" >"$WORK/probe-$name.out" 2>&1 || true
    after=$(probe_stats) || die "probe: no stats"
    PROBE[$name]=$(awk -v b="$before" -v a="$after" 'BEGIN {
      split(b, x, /[ =]/); split(a, y, /[ =]/); printf "%d/%d", y[4] - x[4], y[2] - x[2] - 1 }')
  }
  probe_client ab ab -q -n 50 -c 2 "$url/x"
  probe_client wrk-close wrk -t 1 -c 2 -d 1s -H "Connection: close" "$url/x"
  if command -v h2load >/dev/null; then
    probe_client h2load-close h2load --h1 -n 50 -c 2 -H "Connection: close" "$url/x"
  else
    PROBE[h2load-close]="not installed (nghttp2-client)"
  fi
  probe_client s_time-new openssl s_time -connect "127.0.0.1:$port" -new -www /x -time 1
  probe_client s_time-reuse openssl s_time -connect "127.0.0.1:$port" -reuse -www /x -time 1
  kill "$PROBE_PID" 2>/dev/null || true
  wait "$PROBE_PID" 2>/dev/null || true
  PROBE_PID=""
  log "resumed/handshakes: ab ${PROBE[ab]}, wrk (Connection: close) ${PROBE[wrk-close]}, h2load --h1 (Connection: close) ${PROBE[h2load-close]}, s_time -new ${PROBE[s_time-new]}, s_time -reuse ${PROBE[s_time-reuse]}"
}
if [[ $RESUME_PROBE == 1 ]]; then probe_resumption; fi

# ---------------------------------------------------------------- rows
HZ=$(getconf CLK_TCK)
ROWS=()
# Per row: client, what its p99 covers. Per row.round: the figures.
declare -A CLIENT P99_COVERS RPS P99_MS SRV_US CLI_US BUSY N RESUMED

# measure ROW TARGET OUT CMD...: CMD (a load client) with the server's CPU, the client's CPU
# (/usr/bin/time) and the whole machine's busy time read around it. Sets M_SRV_TICKS,
# M_WALL, M_CLI_SECS, M_BUSY_PCT.
measure() {
  local row=$1 target=$2 out=$3 pid s0 s1 b0 b1 t0 t1 w0
  shift 3
  pid=${SRV_PID[$target]}
  s0=$(cpu_ticks "$pid") b0=$(busy_ticks) t0=$(total_ticks) w0=$(now)
  if ! /usr/bin/time -f '%U %S' -o "$out.time" "$@" >"$out" 2>&1; then
    tail -n 20 "$out" >&2
    die "[$row] $1 failed"
  fi
  M_WALL=$(elapsed_precise "$w0")
  s1=$(cpu_ticks "$pid") b1=$(busy_ticks) t1=$(total_ticks)
  kill -0 "$pid" 2>/dev/null || die "[$row] server died: $(tail -n 5 "$WORK/serve-$target.log")"
  M_SRV_TICKS=$((s1 - s0))
  M_CLI_SECS=$(awk '{ print $1 + $2 }' "$out.time")
  M_BUSY_PCT=$(awk -v b=$((b1 - b0)) -v t=$((t1 - t0)) 'BEGIN { if (t) printf "%.0f", b / t * 100; else print "-" }')
}
elapsed_precise() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

# record ROW ROUND ANSWERS RATE P99_MS [RESUMED]: per-request CPU of server and client.
record() {
  local row=$1 key=$1.$2 n=$3
  ((n > 0)) || die "[$row] no answers"
  N[$key]=$n RPS[$key]=$4 P99_MS[$key]=$5 RESUMED[$key]=${6:--} BUSY[$key]=$M_BUSY_PCT
  SRV_US[$key]=$(awk -v t="$M_SRV_TICKS" -v hz="$HZ" -v n="$n" 'BEGIN { printf "%.0f", t / hz / n * 1e6 }')
  CLI_US[$key]=$(awk -v c="$M_CLI_SECS" -v n="$n" 'BEGIN { printf "%.0f", c / n * 1e6 }')
  log "[$row round $2] $(printf '%.0f' "$4")/s, p99 $5 ms, server ${SRV_US[$key]} µs/req, client ${CLI_US[$key]} µs/req, machine $M_BUSY_PCT% busy"
}

add_row() {
  local row=$1
  [[ -n ${CLIENT[$row]:-} ]] && return 0
  ROWS+=("$row")
  CLIENT[$row]=$2
  P99_COVERS[$row]=$3
}

# row_wrk ROW TARGET ROUND [WRK-ARGS...]: token.lua over keep-alive connections, or with
# `-H 'Connection: close'` one connection per token.
row_wrk() {
  local row=$1 target=$2 round=$3 out check lat n
  shift 3
  add_row "$row" "wrk -t $THREADS -c $CONNECTIONS $*" "request written → answer (wrk)"
  out=$WORK/$row.$round.out
  measure "$row" "$target" "$out" wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" --latency \
    -s "$BENCH_DIR/token.lua" "$@" "${SRV_URL[$target]}"
  check=$(grep '^wrk-check:' "$out") || die "[$row] token.lua printed no check line"
  lat=$(grep '^wrk-latency-us:' "$out") || die "[$row] token.lua printed no latency line"
  [[ $check == *" non200=0 bad_body=0 "* ]] || die "[$row] bad answers: $check"
  [[ $check == *"errors=connect:0,read:0,write:0,timeout:0"* ]] || die "[$row] socket errors: $check"
  n=$(sed -n 's/.* responses=\([0-9]*\).*/\1/p' <<<"$check")
  record "$row" "$round" "$n" "$(awk '/^Requests\/sec:/ { print $2 }' "$out")" \
    "$(awk -v u="$(sed -n 's/.*p99=\([0-9]*\).*/\1/p' <<<"$lat")" 'BEGIN { printf "%.1f", u / 1000 }')"
}

# row_ab ROW TARGET ROUND: NEW_REQUESTS token requests, each on a new connection (HTTP/1.0,
# the server closes), CONNECTIONS at a time.
row_ab() {
  local row=$1 target=$2 round=$3 out
  add_row "$row" "ab -n $NEW_REQUESTS -c $CONNECTIONS" "connect → answer (ab, whole ms)"
  out=$WORK/$row.$round.out
  measure "$row" "$target" "$out" ab -q -n "$NEW_REQUESTS" -c "$CONNECTIONS" \
    -H "Authorization: Basic $AUTH_B64" "${SRV_URL[$target]}$TOKEN_PATH"
  grep -q "^Complete requests: *$NEW_REQUESTS\$" "$out" || die "[$row] not all requests completed: $(grep -E '^(Complete|Failed)' "$out")"
  grep -q '^Failed requests: *0$' "$out" || die "[$row] failed requests: $(grep -A3 '^Failed' "$out")"
  ! grep -q '^Non-2xx' "$out" || die "[$row] non-200 answers: $(grep '^Non-2xx' "$out")"
  record "$row" "$round" "$NEW_REQUESTS" "$(awk '/^Requests per second:/ { print $4 }' "$out")" \
    "$(awk '$1 == "99%" { print $2 }' "$out")" 0
}

# row_stime ROW TARGET ROUND new|reuse: openssl s_time on /-/health, one connection at a time
# for STIME_SECONDS; counts the handshakes s_time reports as resumed ('r').
row_stime() {
  local row=$1 target=$2 round=$3 mode=$4 out n resumed
  add_row "$row" "openssl s_time -$mode -www /-/health" "- (one at a time)"
  out=$WORK/$row.$round.out
  measure "$row" "$target" "$out" openssl s_time -connect "127.0.0.1:${SRV_PORT[$target]}" "-$mode" \
    -www /-/health -time "$STIME_SECONDS"
  # "2245 connections in 0.82s; 2737.80 connections/user sec, bytes read 276135"
  n=$(awk '/ connections in [0-9.]+s;/ { print $1; exit }' "$out")
  [[ $n =~ ^[0-9]+$ ]] || die "[$row] no connection count in s_time output: $(tail -n 3 "$out")"
  resumed=$(grep -E '^[rt3*]+$' "$out" | tr -cd 'r' | wc -c)
  record "$row" "$round" "$n" "$(awk -v n="$n" -v w="$M_WALL" 'BEGIN { printf "%.1f", n / w }')" - "$resumed"
}

# both ROUND RUNNER ROW TARGET ARGS...: the row against this build and, with BASELINE_BIN,
# against the baseline too, in an order that alternates between rounds.
both() {
  local round=$1 runner=$2 row=$3 target=$4
  shift 4
  if [[ -z $BASELINE_BIN ]]; then
    "$runner" "$row" "$target" "$round" "$@"
  elif ((round % 2)); then
    "$runner" "$row" "$target" "$round" "$@"
    "$runner" "$row@base" "$target@base" "$round" "$@"
  else
    "$runner" "$row@base" "$target@base" "$round" "$@"
    "$runner" "$row" "$target" "$round" "$@"
  fi
}

for ((round = 1; round <= ROUNDS; round++)); do
  log "round $round/$ROUNDS (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  row_wrk http-keepalive http "$round"
  both "$round" row_wrk https-keepalive ecdsa
  row_ab http-new http "$round"
  both "$round" row_ab https-new-ecdsa ecdsa
  both "$round" row_ab https-new-rsa rsa
  both "$round" row_wrk https-resumed-ecdsa ecdsa -H "Connection: close"
  both "$round" row_wrk https-resumed-rsa rsa -H "Connection: close"
  both "$round" row_stime handshake-new-ecdsa ecdsa new
  both "$round" row_stime handshake-reuse-ecdsa ecdsa reuse
  both "$round" row_stime handshake-new-rsa rsa new
  both "$round" row_stime handshake-reuse-rsa rsa reuse
done

declare -A RSS
for name in "${!SRV_PID[@]}"; do
  RSS[$name]=$(awk '/^VmHWM:/ { print $2 }' "/proc/${SRV_PID[$name]}/status")
  SERVER_PID=${SRV_PID[$name]} stop_server
  if grep -qF -- "$LOAD_SECRET" "$WORK/serve-$name.log"; then
    die "[$name] the deploy-token secret appears in the server log"
  fi
done
SRV_PID=()

# ---------------------------------------------------------------- summary
# med ROW FIELD: the median over the rounds of one figure of a row.
med() {
  local -n field=$2
  local round values=()
  for ((round = 1; round <= ROUNDS; round++)); do values+=("${field[$1.$round]}"); done
  printf '%s\n' "${values[@]}" | grep -E '^[0-9.]+$' | sort -n |
    awk '{ v[NR] = $1 } END { if (!NR) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# all ROW FIELD: every round's figure, space-separated.
all() {
  local -n field=$2
  local round out=""
  for ((round = 1; round <= ROUNDS; round++)); do out+="${field[$1.$round]} "; done
  printf '%s' "${out% }"
}
# diff_us A B: median server µs/req of row A minus row B.
diff_us() { awk -v a="$(med "$1" SRV_US)" -v b="$(med "$2" SRV_US)" 'BEGIN { printf "%.0f", a - b }'; }
sum_us() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", a + b }'; }

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
{
  echo
  echo "=== wvs-auth HTTPS token benchmark ==="
  echo "machine         : $CPUS CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), load average $LOAD_START at the start, $LOAD_END now"
  echo "build           : $BIN${BASELINE_BIN:+; baseline (@base rows) $BASELINE_BIN}"
  echo "load            : GET /jwt/auth scope=repository:bench/app:pull,push, Basic auth as $LOAD_USER, $KEY_ALG token key; $ROUNDS round(s), wrk -d $DURATION, ab -n $NEW_REQUESTS, s_time -time $STIME_SECONDS"
  echo "certificates    : leaf alone, ECDSA P-256 or RSA-2048, signed by a P-256 CA; TLS 1.3 negotiated ($(openssl version | cut -d' ' -f1-2) clients, X25519)"
  echo "openssl µs/op   : rsa2048 sign ${OP_US[rsa_sign]} verify ${OP_US[rsa_verify]}; P-256 sign ${OP_US[ecdsa_sign]} verify ${OP_US[ecdsa_verify]}; X25519 ${OP_US[x25519]} (one process, CPU time)"
  if [[ $RESUME_PROBE == 1 ]]; then
    echo "clients resume  : ab ${PROBE[ab]}; wrk -H 'Connection: close' ${PROBE[wrk-close]}; h2load --h1 -H 'Connection: close' ${PROBE[h2load-close]}; s_time -new ${PROBE[s_time-new]}; s_time -reuse ${PROBE[s_time-reuse]} (resumed/handshakes against an OpenSSL server)"
  fi
  echo "medians over the rounds; server = wvs-auth's utime+stime per answer, client = the load tool's; ceiling = $CPUS CPUs ÷ server µs (the rate with the cores to itself)"
  printf '%-28s %9s %8s %9s %9s %9s %6s %9s  %s\n' row 'req/s' 'p99 ms' 'server µs' 'client µs' ceiling busy resumed client
  for row in "${ROWS[@]}"; do
    srv=$(med "$row" SRV_US)
    resumed=$(all "$row" RESUMED | awk '{ print $1 }')
    [[ $resumed == - ]] || resumed+=/$(all "$row" N | awk '{ print $1 }')
    printf '%-28s %9.0f %8s %9.0f %9.0f %9s %5.0f%% %9s  %s\n' "$row" "$(med "$row" RPS)" "$(med "$row" P99_MS)" "$srv" \
      "$(med "$row" CLI_US)" "$(awk -v s="$srv" -v c="$CPUS" 'BEGIN { if (s > 0) printf "%.0f", c * 1e6 / s; else print "-" }')" \
      "$(med "$row" BUSY)" "$resumed" "${CLIENT[$row]}"
  done
  echo "p99 covers      : wrk rows from the request's write to its answer (a new connection's handshake is before that); ab rows from connect to answer; s_time runs one connection at a time"
  echo "resumed         : round 1's handshakes resumed/all as s_time counts them, 0 for ab (it never offers a session); wrk with Connection: close resumes all but each connection's first (see 'clients resume')"
  echo "--- server CPU per request, differences of medians (µs)"
  echo "TLS records, keep-alive      : https-keepalive − http-keepalive = $(diff_us https-keepalive http-keepalive)"
  echo "TCP connection               : http-new − http-keepalive = $(diff_us http-new http-keepalive)"
  echo "full handshake, ECDSA cert   : https-new-ecdsa − http-new = $(diff_us https-new-ecdsa http-new)  (openssl: P-256 sign + 2 X25519 = $(sum_us "${OP_US[ecdsa_sign]}" "$(sum_us "${OP_US[x25519]}" "${OP_US[x25519]}")"))"
  echo "RSA-2048 cert instead        : https-new-rsa − https-new-ecdsa = $(diff_us https-new-rsa https-new-ecdsa)  (openssl: rsa2048 sign − P-256 sign = $(awk -v a="${OP_US[rsa_sign]}" -v b="${OP_US[ecdsa_sign]}" 'BEGIN { printf "%.0f", a - b }'))"
  echo "resumption instead, ECDSA    : https-new-ecdsa − https-resumed-ecdsa = $(diff_us https-new-ecdsa https-resumed-ecdsa)"
  echo "resumption instead, RSA      : https-new-rsa − https-resumed-rsa = $(diff_us https-new-rsa https-resumed-rsa)"
  printf 'handshake alone, ECDSA       : new %.0f, resumed %.0f (s_time, /-/health)\n' "$(med handshake-new-ecdsa SRV_US)" "$(med handshake-reuse-ecdsa SRV_US)"
  printf 'handshake alone, RSA         : new %.0f, resumed %.0f\n' "$(med handshake-new-rsa SRV_US)" "$(med handshake-reuse-rsa SRV_US)"
  printf 'token (%s), keep-alive    : %.0f per token over plain HTTP (openssl: rsa2048 sign %s, P-256 sign %s)\n' "$KEY_ALG" \
    "$(med http-keepalive SRV_US)" "${OP_US[rsa_sign]}" "${OP_US[ecdsa_sign]}"
  if [[ -n $BASELINE_BIN ]]; then
    echo "--- this build against the baseline (medians; server µs/req and req/s)"
    for row in "${ROWS[@]}"; do
      [[ $row == *@base ]] && continue
      [[ -n ${CLIENT[$row@base]:-} ]] || continue
      printf '%-28s server %5.0f vs %5.0f µs (%s%%), %6.0f vs %6.0f req/s\n' "$row" "$(med "$row" SRV_US)" "$(med "$row@base" SRV_US)" \
        "$(awk -v a="$(med "$row" SRV_US)" -v b="$(med "$row@base" SRV_US)" 'BEGIN { printf "%+.0f", (a - b) / b * 100 }')" \
        "$(med "$row" RPS)" "$(med "$row@base" RPS)"
    done
  fi
  echo "server peak RSS : $(for name in http ecdsa rsa ecdsa@base rsa@base; do [[ -n ${RSS[$name]:-} ]] && printf '%s %s kB; ' "$name" "${RSS[$name]}"; done)(VmHWM)"
  for row in "${ROWS[@]}"; do
    echo "ROUND row=$row req_per_s=[$(all "$row" RPS)] p99_ms=[$(all "$row" P99_MS)] server_us=[$(all "$row" SRV_US)] client_us=[$(all "$row" CLI_US)] busy_pct=[$(all "$row" BUSY)] answers=[$(all "$row" N)] resumed=[$(all "$row" RESUMED)]"
  done
  result="RESULT"
  for row in "${ROWS[@]}"; do
    result+=" ${row}_rps=$(med "$row" RPS) ${row}_server_us=$(med "$row" SRV_US)"
  done
  echo "$result load_start=${LOAD_START// /,} load_end=${LOAD_END// /,}"
}
