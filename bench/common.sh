# Helpers shared by bench/token_bench.sh, https_bench.sh, scale_bench.sh, cold_bench.sh and
# peer_bench.sh (sourced, not run). Expects REPO to be set; sets BIN.

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

# wait_healthy URL PID LOGFILE [CURL-ARGS...]: up to 30 s for a 200 on URL/-/health
# (CURL-ARGS e.g. --cacert CA.pem for an https URL).
wait_healthy() {
  local url=$1 pid=$2 slog=$3 i
  shift 3
  for i in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || die "server exited at start: $(tail -n 5 "$slog")"
    [[ $(curl -s "$@" -o /dev/null -w '%{http_code}' "$url/-/health" || true) == 200 ]] && return 0
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
# busy_ticks, total_ticks: non-idle and all CPU time of the whole machine (/proc/stat), ticks.
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
total_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9; exit }' /proc/stat; }

# clear_wvs_env: unsets every WVS_AUTH_* variable but WVS_AUTH_WORKERS, so that a stray
# WVS_AUTH_CONFIG, WVS_AUTH_SERVICE or WVS_AUTH_LISTEN does not change what is measured
# (read WVS_AUTH_BIN, or call build_release, first).
clear_wvs_env() {
  local var
  while read -r var; do
    [[ $var == WVS_AUTH_WORKERS ]] || unset "$var"
  done < <(compgen -e | grep '^WVS_AUTH_' || true)
}

# json_field JSON NAME: a string field of `token create --json` output.
json_field() { sed -n "s/^ *\"$2\": \"\\([^\"]*\\)\",\\{0,1\\}\$/\\1/p" <<<"$1"; }

# make_load_token [ALG]: through the CLI (the `wvs` function of the calling script, which
# names the data and keys directories): keys init (RS256 unless ALG), group bench, project
# bench/app and one read+write registry deploy token with the default username
# (wvs+deploy-token-N, whose `+` must be percent-encoded in account=). Sets LOAD_USER and
# LOAD_SECRET.
make_load_token() {
  local json
  wvs keys init --alg "${1:-RS256}" >/dev/null || die "keys init failed"
  wvs group create bench >/dev/null || die "group create failed"
  wvs project create bench/app >/dev/null || die "project create failed"
  json=$(wvs token create --project bench/app --name bench-load \
    --scopes read_registry,write_registry --json) || die "token create (load token) failed"
  LOAD_USER=$(json_field "$json" username)
  LOAD_SECRET=$(json_field "$json" token)
  [[ -n $LOAD_USER && $LOAD_SECRET == wvsdt-* ]] || die "cannot read username/token from: $json"
}

b64url_decode() {
  local s
  s=$(tr '_-' '/+' <<<"$1")
  while ((${#s} % 4)); do s+="="; done
  base64 -d <<<"$s" 2>/dev/null
}

# check_token_grant URL USER SECRET BODYFILE [CURL-ARGS...]: one token request by hand before
# the load, as token.lua sends it: a clear message if credentials or grants are off, and proof
# that what the load measures is a real pull,push grant on bench/app, not an empty-access token.
check_token_grant() {
  local url=$1 user=$2 secret=$3 body=$4 code jwt payload
  shift 4
  code=$(curl -s "$@" -o "$body" -w '%{http_code}' -u "$user:$secret" \
    "$url/jwt/auth?service=container_registry&scope=$(urlencode "repository:bench/app:pull,push")&account=$(urlencode "$user")") ||
    die "curl to $url/jwt/auth failed"
  [[ $code == 200 ]] || die "first token request to $url answered $code: $(head -c 300 "$body")"
  jwt=$(sed -n 's/.*"token":"\([^"]*\)".*/\1/p' "$body")
  payload=$(b64url_decode "$(cut -d. -f2 <<<"$jwt")")
  grep -q '"actions":\["pull","push"\]' <<<"$payload" ||
    die "the token from $url does not grant pull,push on bench/app: $payload"
}
