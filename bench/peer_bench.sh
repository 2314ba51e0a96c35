#!/usr/bin/env bash
# Issue 7 target 6: wvs-auth against distribution's reference token server
# (contrib/token-server of distribution v2.8), same machine, same run, same request mix
# (wrk, keep-alive, valid Basic credentials, pull,push on one repository, RS256 keys).
#
# The peer's code is not part of this repository, and no script here downloads or builds
# it: PEER_BIN names a token-server binary (distribution v2.8's contrib/token-server) that
# you built yourself.
#
#   apt-get install -y apache2-utils wrk
#   PEER_BIN=/path/to/token-server bash bench/peer_bench.sh
#
# See bench/README.md.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/common.sh
source "$REPO/bench/common.sh"

DURATION=${DURATION:-15s}
ROUNDS=${ROUNDS:-2}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
# bcrypt cost of the peer's htpasswd entry (htpasswd -B; its only supported hash). 5 is
# Apache htpasswd's default; 4 is bcrypt's minimum.
PEER_BCRYPT_COST=${PEER_BCRYPT_COST:-5}
# The peer logs every request at info level and has no switch to stop it (only -debug
# for more); wvs-auth runs with its access log on too, so both do the same work.
WVS_RUST_LOG=${WVS_RUST_LOG:-info}
OPENSSL_SECONDS=${OPENSSL_SECONDS:-5}
# wrk counts an answer slower than this as a timeout (reported, not a failure: a slow peer
# is a result).
WRK_TIMEOUT=${WRK_TIMEOUT:-10s}
KEEP_WORKDIR=${KEEP_WORKDIR:-0}
PEER_PID=""

for tool in wrk curl openssl htpasswd; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done

WORK=$(mktemp -d -t wvs-peer.XXXXXX)
cleanup() {
  stop_server
  [[ -n $PEER_PID ]] && kill "$PEER_PID" 2>/dev/null || true
  if [[ $KEEP_WORKDIR == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $CPUS CPUs"

# ---------------------------------------------------------------- the peer
[[ -n ${PEER_BIN:-} ]] || die "set PEER_BIN to a token-server binary of distribution v2.8 (see the header of this script)"
[[ -x $PEER_BIN ]] || die "PEER_BIN=$PEER_BIN is not executable"

PEER_USER=bench
PEER_SECRET=$(openssl rand -hex 16)
# libtrust (the peer's key loader) reads a PKCS#1 "RSA PRIVATE KEY" PEM.
openssl genrsa -traditional -out "$WORK/peer-key.pem" 2048 2>/dev/null ||
  openssl genrsa -out "$WORK/peer-key.pem" 2048 2>/dev/null || die "openssl genrsa failed"
htpasswd -B -C "$PEER_BCRYPT_COST" -b -c "$WORK/htpasswd" "$PEER_USER" "$PEER_SECRET" 2>/dev/null ||
  die "htpasswd failed"

# ---------------------------------------------------------------- wvs-auth
build_release
wvs() { "$BIN" --data-dir "$WORK/data" --keys-dir "$WORK/keys" "$@"; }
make_load_token RS256
WVS_USER=$LOAD_USER
WVS_SECRET=$LOAD_SECRET

SCOPE="repository:bench/app:pull,push"

# start NAME: starts wvs-auth or the peer on a free port; sets URL, PATH_, USER_, SECRET_.
start() {
  local port
  port=$(free_port) || die "no free port"
  URL="http://127.0.0.1:$port"
  if [[ $1 == wvs-auth ]]; then
    RUST_LOG=$WVS_RUST_LOG "$BIN" --data-dir "$WORK/data" --keys-dir "$WORK/keys" serve \
      --listen "127.0.0.1:$port" >"$WORK/serve-$1.log" 2>&1 &
    SERVER_PID=$!
    wait_healthy "$URL" "$SERVER_PID" "$WORK/serve-$1.log"
    PATH_=/jwt/auth USER_=$WVS_USER SECRET_=$WVS_SECRET
  else
    "$PEER_BIN" -addr "127.0.0.1:$port" -realm "$URL/token/" -key "$WORK/peer-key.pem" \
      -passwd "$WORK/htpasswd" >"$WORK/serve-$1.log" 2>&1 &
    SERVER_PID=$!
    PATH_=/token/ USER_=$PEER_USER SECRET_=$PEER_SECRET
    local i
    for i in $(seq 1 100); do
      kill -0 "$SERVER_PID" 2>/dev/null || die "peer exited: $(tail -n 5 "$WORK/serve-$1.log")"
      [[ $(curl -s -o /dev/null -w '%{http_code}' "$URL/token/" || true) != 000 ]] && break
      sleep 0.1
    done
  fi
}

declare -A RPS_LIST P99_LIST RSS_LIST CPU_LIST TIMEOUTS
run() {
  local name=$1 round=$2 out body code payload check rps p99 c0 c1
  start "$name"
  body=$WORK/first-$name.json
  code=$(curl -s -o "$body" -w '%{http_code}' -u "$USER_:$SECRET_" \
    "$URL$PATH_?service=container_registry&scope=$(urlencode "$SCOPE")&account=$(urlencode "$USER_")")
  [[ $code == 200 ]] || die "[$name] first request answered $code: $(head -c 300 "$body")"
  payload=$(sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p' "$body" | cut -d. -f2 | tr '_-' '/+')
  while ((${#payload} % 4)); do payload+="="; done
  base64 -d <<<"$payload" 2>/dev/null | grep -qE '"actions":\[("pull","push"|"push","pull")\]' ||
    die "[$name] the token does not grant pull,push: $(base64 -d <<<"$payload" 2>/dev/null)"
  out=$WORK/wrk-$name-$round.out
  log "[$name #$round] wrk -t $THREADS -c $CONNECTIONS -d $DURATION"
  c0=$(cpu_ticks "$SERVER_PID")
  WVS_BENCH_USER=$USER_ WVS_BENCH_SECRET=$SECRET_ WVS_BENCH_PATH=$PATH_ WVS_BENCH_SCOPE=$SCOPE \
    wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" --timeout "$WRK_TIMEOUT" --latency -s "$REPO/bench/token.lua" "$URL" \
    >"$out" 2>&1 || { cat "$out" >&2; die "[$name] wrk failed"; }
  kill -0 "$SERVER_PID" 2>/dev/null || die "[$name] server died"
  c1=$(cpu_ticks "$SERVER_PID")
  RSS_LIST[$name]+="$(awk '/^VmHWM:/ { print $2 }' "/proc/$SERVER_PID/status") "
  stop_server
  check=$(grep '^wrk-check:' "$out") || die "[$name] no check line"
  [[ $check == *" non200=0 bad_body=0 "* && $check == *"errors=connect:0,read:0,write:0,"* ]] ||
    die "[$name] bad answers or socket errors: $check"
  TIMEOUTS[$name]+="$(sed -n 's/.*timeout:\([0-9]*\).*/\1/p' <<<"$check") "
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  p99=$(sed -n 's/.*p99=\([0-9]*\).*/\1/p' <<<"$(grep '^wrk-latency-us:' "$out")")
  RPS_LIST[$name]+="$rps "
  P99_LIST[$name]+="$p99 "
  CPU_LIST[$name]+="$(awk -v c=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v r="$rps" -v d="${DURATION%s}" 'BEGIN { printf "%.0f", c / hz / (r * d) * 1e6 }') "
  log "[$name #$round] $rps tokens/s, p99 $p99 us"
}

# What bounds the peer: Go's own RSA-2048 PKCS#1 v1.5 signatures per second (the Go that
# built it, standard library only, one goroutine per CPU, 5 s), beside openssl's.
GO_SIGN=-
if command -v go >/dev/null; then
  mkdir -p "$WORK/gosign"
  cat >"$WORK/gosign/main.go" <<'GO'
package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256([]byte("header.claims"))
	var n int64
	var stop int32
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < runtime.NumCPU(); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for atomic.LoadInt32(&stop) == 0 {
				if _, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:]); err == nil {
					atomic.AddInt64(&n, 1)
				}
			}
		}()
	}
	time.Sleep(5 * time.Second)
	atomic.StoreInt32(&stop, 1)
	wg.Wait()
	fmt.Printf("%.1f\n", float64(n)/time.Since(start).Seconds())
}
GO
  GO_SIGN=$(cd "$WORK/gosign" && GO111MODULE=off GOPROXY=off GOCACHE=$WORK/gocache go run main.go) || GO_SIGN=-
fi

SIGN_BEFORE=$(openssl_rsa_sign_per_s "$WORK/openssl-before.out")
log "openssl rsa2048 sign/s before: $SIGN_BEFORE; Go crypto/rsa sign/s (wall-clock): $GO_SIGN"
for round in $(seq 1 "$ROUNDS"); do
  run wvs-auth "$round"
  run peer "$round"
done
SIGN_AFTER=$(openssl_rsa_sign_per_s "$WORK/openssl-after.out")
log "openssl rsa2048 sign/s after: $SIGN_AFTER"

W=$(median "${RPS_LIST[wvs-auth]}")
P=$(median "${RPS_LIST[peer]}")
{
  echo
  echo "=== wvs-auth vs distribution contrib/token-server ==="
  echo "machine       : $CPUS CPUs, load average now $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "openssl sign/s: before $SIGN_BEFORE, after $SIGN_AFTER; Go crypto/rsa sign/s (the peer's signer, wall-clock, $CPUS goroutines): $GO_SIGN"
  echo "load          : wrk -t $THREADS -c $CONNECTIONS -d $DURATION, $ROUNDS rounds alternating, scope $SCOPE, Basic auth on every request"
  echo "wvs-auth      : tokens/s [${RPS_LIST[wvs-auth]}] median $W; p99 us [${P99_LIST[wvs-auth]}]; server CPU us/token [${CPU_LIST[wvs-auth]}]; VmHWM kB [${RSS_LIST[wvs-auth]}]; wrk timeouts [${TIMEOUTS[wvs-auth]}] (RUST_LOG=$WVS_RUST_LOG)"
  echo "peer          : tokens/s [${RPS_LIST[peer]}] median $P; p99 us [${P99_LIST[peer]}]; server CPU us/token [${CPU_LIST[peer]}]; VmHWM kB [${RSS_LIST[peer]}]; wrk timeouts [${TIMEOUTS[peer]}] (htpasswd bcrypt cost $PEER_BCRYPT_COST)"
  echo "ratio         : wvs-auth / peer = $(awk -v a="$W" -v b="$P" 'BEGIN { printf "%.2f", a / b }')"
  echo "RESULT wvs_rps=$W peer_rps=$P ratio=$(awk -v a="$W" -v b="$P" 'BEGIN { printf "%.2f", a / b }') peer_bcrypt_cost=$PEER_BCRYPT_COST wvs_rust_log=$WVS_RUST_LOG openssl_before=$SIGN_BEFORE openssl_after=$SIGN_AFTER go_rsa_sign_per_s=$GO_SIGN"
}
