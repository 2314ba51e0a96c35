# Helpers shared by bench/token_bench.sh, scale_bench.sh, cold_bench.sh and peer_bench.sh
# (sourced, not run). Expects REPO to be set; sets BIN.

CPUS=$(nproc)
SERVER_PID=""

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() {
  echo "$(basename "$0"): $*" >&2
  exit 1
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# SIGTERM, up to 10 s for a graceful exit, then SIGKILL.
stop_server() {
  local pid=$SERVER_PID
  [[ -n $pid ]] || return 0
  SERVER_PID=""
  kill -TERM "$pid" 2>/dev/null || return 0
  local _
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "server $pid ignored SIGTERM for 10 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# WVS_AUTH_BIN=/path/to/wvs-auth skips the build and benchmarks that binary.
build_release() {
  if [[ -n ${WVS_AUTH_BIN:-} ]]; then
    [[ -x $WVS_AUTH_BIN ]] || die "WVS_AUTH_BIN=$WVS_AUTH_BIN is not executable"
    BIN=$WVS_AUTH_BIN
    return 0
  fi
  log "cargo build --release"
  (cd "$REPO" && cargo build --release --quiet) || die "cargo build --release failed"
  local target_dir=${CARGO_TARGET_DIR:-$REPO/target}
  [[ $target_dir == /* ]] || target_dir=$REPO/$target_dir
  BIN=$target_dir/release/wvs-auth
  [[ -x $BIN ]] || die "no binary at $BIN"
}

free_port() {
  local p _
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

urlencode() {
  local s=$1 out="" c i
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case $c in
      [A-Za-z0-9._~-]) out+=$c ;;
      *) out+=$(printf '%%%02X' "'$c") ;;
    esac
  done
  printf '%s' "$out"
}

# wait_healthy URL PID LOGFILE: up to 30 s for a 200 on URL/-/health.
wait_healthy() {
  local url=$1 pid=$2 slog=$3 i
  for i in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || die "server exited at start: $(tail -n 5 "$slog")"
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$url/-/health" || true) == 200 ]] && return 0
    sleep 0.1
  done
  die "/-/health not 200 after 30 s: $(tail -n 5 "$slog")"
}

# openssl_rsa_sign_per_s OUTFILE: sign/s of `openssl speed -multi CPUS rsa2048`.
openssl_rsa_sign_per_s() {
  local out=$1 rate
  openssl speed -multi "${OPENSSL_MULTI:-$CPUS}" -seconds "${OPENSSL_SECONDS:-10}" rsa2048 >"$out" 2>&1 ||
    die "openssl speed failed: $(tail -n 3 "$out")"
  rate=$(awk '$1 == "rsa" && $2 == "2048" && $3 == "bits" { print $(NF - 1); exit }' "$out")
  [[ $rate =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "cannot find rsa2048 sign/s in $out"
  printf '%s' "$rate"
}

# median "V1 V2 ...": the middle value, or the mean of the middle two (2 decimals).
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# cpu_ticks PID: utime+stime of a process in clock ticks (USER_HZ).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# json_field JSON NAME: a string field of `token create --json` output.
json_field() { sed -n "s/^ *\"$2\": \"\\([^\"]*\\)\",\\{0,1\\}\$/\\1/p" <<<"$1"; }
