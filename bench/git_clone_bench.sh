#!/usr/bin/env bash
# Git clone benchmark for wvs-auth's git realm. See bench/README.md.
#
# Builds the release binary, makes a ~SIZE_MB repository of incompressible blobs over COMMITS
# commits, pushes it into a project's bare repository, then clones it RUNS times each way,
# alternating: `git clone --no-local` straight from the bare repository on disk, and
# `git clone http://…` through wvs-auth with a deploy token. Prints the median of each, the
# ratio http ÷ disk (target ≤ 1.3) and wvs-auth's peak RSS (target < 100 MB). Exits non-zero on
# any failure (build, a clone, a wrong checkout), never because a figure misses its target.
#
# Environment:
#   SIZE_MB=200       repository size (random data, so the pack is about this big)
#   COMMITS=10        commits the data is spread over (one new blob per commit)
#   RUNS=3            timed clones each way (after one untimed warm-up each)
#   KEEP_WORKDIR=0    1 keeps the temp dir (repository, clones, server log)
#   WVS_AUTH_WORKERS  passed through to `serve` (default there: number of CPUs)
set -euo pipefail

SIZE_MB=${SIZE_MB:-200}
COMMITS=${COMMITS:-10}
RUNS=${RUNS:-3}
KEEP_WORKDIR=${KEEP_WORKDIR:-0}

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)

log() { printf '[git-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  printf '[git-bench] FAILED: %s\n' "$*" >&2
  exit 1
}
now() { printf '%s' "${EPOCHREALTIME/,/.}"; }

[[ $SIZE_MB =~ ^[0-9]+$ && $COMMITS =~ ^[0-9]+$ && $RUNS =~ ^[0-9]+$ ]] ||
  die "SIZE_MB, COMMITS and RUNS must be numbers"
((SIZE_MB > 0 && COMMITS > 0 && RUNS > 0)) || die "SIZE_MB, COMMITS and RUNS must be positive"

# Only the workers setting comes from the caller's environment.
while read -r var; do
  [[ $var == WVS_AUTH_WORKERS ]] || unset "$var"
done < <(compgen -e | grep '^WVS_AUTH_' || true)

for tool in cargo curl git awk sort head; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done

log "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
log "cargo build --release"
(cd "$REPO" && cargo build --release --quiet) || die "cargo build --release failed"
BIN=$REPO/target/release/wvs-auth

WORK=$(mktemp -d "${TMPDIR:-/tmp}/wvs-git-bench.XXXXXX")
SERVER_PID=
cleanup() {
  if [[ -n $SERVER_PID ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ $KEEP_WORKDIR == 1 ]]; then
    log "kept $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

# git with a private configuration: no user or system config, no credential prompts.
export HOME=$WORK/home GIT_CONFIG_GLOBAL=$WORK/home/.gitconfig GIT_CONFIG_NOSYSTEM=1
export GIT_TERMINAL_PROMPT=0 LC_ALL=C
mkdir -p "$HOME"
git config --global user.name bench
git config --global user.email bench@wvs.invalid

wvs() { "$BIN" --data-dir "$WORK/data" --keys-dir "$WORK/keys" "$@"; }

# ---------------------------------------------------------------- repository
wvs group create bench >/dev/null
wvs project create bench/big >/dev/null
BARE=$WORK/data/repositories/bench/big.git
[[ -f $BARE/HEAD ]] || die "project create made no repository at $BARE"
TOKEN_JSON=$(wvs token create --project bench/big --name bench --scopes read_repository --json)
USERNAME=$(printf '%s' "$TOKEN_JSON" | sed -n 's/.*"username": *"\([^"]*\)".*/\1/p' | head -1)
SECRET=$(printf '%s' "$TOKEN_JSON" | sed -n 's/.*"token": *"\([^"]*\)".*/\1/p' | head -1)
[[ -n $USERNAME && -n $SECRET ]] || die "could not read the token from: $TOKEN_JSON"

log "building a ${SIZE_MB} MB repository over $COMMITS commits (random, incompressible blobs)"
SRC=$WORK/src
git init -q -b main "$SRC"
PER_COMMIT=$((SIZE_MB * 1024 * 1024 / COMMITS))
for i in $(seq 1 "$COMMITS"); do
  head -c "$PER_COMMIT" /dev/urandom >"$SRC/blob-$i.bin"
  git -C "$SRC" add "blob-$i.bin"
  git -C "$SRC" commit -q -m "blob $i"
done
git -C "$SRC" push -q "file://$BARE" main || die "push into the bare repository failed"
# A push of few objects lands as loose objects (receive.unpackLimit); a served repository is
# packed (git gc), and then pack-objects reuses the stored data instead of compressing 200 MB
# again on every clone. Pack it, as a real server's repository would be.
git -C "$BARE" repack -a -d -q || die "git repack failed"
PACK_KIB=$(git -C "$BARE" count-objects -v | awk '/^size-pack:/ { print $2 }')
EXPECTED_HEAD=$(git -C "$BARE" rev-parse main)
log "bare repository: $((PACK_KIB / 1024)) MiB of packs, main at $EXPECTED_HEAD"

# ---------------------------------------------------------------- server
free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  die "no free port found"
}
PORT=$(free_port)
# The binary itself in the background (not the `wvs` function, whose $! would be a subshell):
# its /proc status gives the peak RSS.
RUST_LOG=${RUST_LOG:-info} "$BIN" --data-dir "$WORK/data" --keys-dir "$WORK/keys" \
  serve --listen "127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 200); do
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/-/health" 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || die "wvs-auth exited: $(tail -5 "$WORK/serve.log")"
  sleep 0.1
done
curl -fsS -o /dev/null "http://127.0.0.1:$PORT/-/health" || die "wvs-auth did not become healthy"
HTTP_URL="http://${USERNAME//+/%2B}:$SECRET@127.0.0.1:$PORT/bench/big.git"

# ---------------------------------------------------------------- clones
# Clones into $WORK/clone, checks the checkout, prints the seconds taken, removes it.
timed_clone() {
  local kind=$1 source=$2 start end
  rm -rf "$WORK/clone"
  start=$(now)
  if [[ $kind == disk ]]; then
    git clone -q --no-local "$source" "$WORK/clone" || die "disk clone failed"
  else
    git clone -q "$source" "$WORK/clone" || die "HTTP clone failed: $(tail -5 "$WORK/serve.log")"
  fi
  end=$(now)
  [[ $(git -C "$WORK/clone" rev-parse HEAD) == "$EXPECTED_HEAD" ]] || die "$kind clone has the wrong HEAD"
  [[ -f $WORK/clone/blob-$COMMITS.bin ]] || die "$kind clone is not checked out"
  rm -rf "$WORK/clone"
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }'
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

log "warm-up (untimed): one clone each way"
timed_clone disk "$BARE" >/dev/null
timed_clone http "$HTTP_URL" >/dev/null

DISK=()
HTTP=()
for run in $(seq 1 "$RUNS"); do
  d=$(timed_clone disk "$BARE")
  h=$(timed_clone http "$HTTP_URL")
  DISK+=("$d")
  HTTP+=("$h")
  log "run $run: disk ${d}s, http ${h}s"
done

[[ $(readlink "/proc/$SERVER_PID/exe") == "$BIN" ]] || die "PID $SERVER_PID is not wvs-auth"
PEAK_KIB=$(awk '/^VmHWM:/ { print $2 }' "/proc/$SERVER_PID/status")
DISK_MED=$(median "${DISK[@]}")
HTTP_MED=$(median "${HTTP[@]}")
RATIO=$(awk -v h="$HTTP_MED" -v d="$DISK_MED" 'BEGIN { printf "%.2f", h / d }')
PEAK_MB=$(awk -v k="$PEAK_KIB" 'BEGIN { printf "%.1f", k / 1024 }')
RATIO_OK=$(awk -v r="$RATIO" 'BEGIN { print (r <= 1.3) ? "meets" : "MISSES" }')
RSS_OK=$(awk -v k="$PEAK_KIB" 'BEGIN { print (k < 100 * 1024) ? "meets" : "MISSES" }')

cat <<EOF

git clone benchmark ($(nproc) CPUs, load average now $(cut -d' ' -f1-3 /proc/loadavg))
  repository        ${SIZE_MB} MB random data in $COMMITS commits, $((PACK_KIB / 1024)) MiB packed
  git               $(git --version)
  disk (--no-local) ${DISK[*]} s   median $DISK_MED s
  http (wvs-auth)   ${HTTP[*]} s   median $HTTP_MED s
  ratio http/disk   $RATIO   ($RATIO_OK target <= 1.3)
  peak RSS          $PEAK_MB MB ($RSS_OK target < 100 MB)
EOF
echo "RESULT size_mb=$SIZE_MB runs=$RUNS disk_s=$DISK_MED http_s=$HTTP_MED ratio=$RATIO peak_rss_kib=$PEAK_KIB"
