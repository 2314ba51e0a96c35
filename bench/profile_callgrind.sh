#!/usr/bin/env bash
# Instruction counts of the token request path: wvs-auth serve (release, 1 worker) under
# `valgrind --tool=callgrind`, REQUESTS keep-alive token requests from `ab -k`, then a
# per-request breakdown of the hot functions. Repeatable where wall-clock figures on the
# shared 2-vCPU VMs are not (perf does not work there).
#
#   bash bench/profile_callgrind.sh             # 2,000 requests, ~1 min under valgrind
#   REQUESTS=500 bash bench/profile_callgrind.sh
#   SEED_TOKENS=1000000 SEED_TOP=100 bash bench/profile_callgrind.sh   # the large database
#
# With SEED_TOKENS > 0 the database is filled by bench/seed_db.py (SEED_TOP top groups, each
# 10 x 10 subgroups with 10 projects per leaf) and the load token is a group token of sg0/s9
# asking for sg0/s9/t9/p9/app, as in bench/scale_bench.sh; instruction counts of the two
# lookups then show whether they grow with the tables.
#
# Needs valgrind, ab (apache2-utils), curl. Output: callgrind.out and a summary in
# $OUT_DIR (default: a temp dir that is kept and printed).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
REQUESTS=${REQUESTS:-2000}
CONCURRENCY=${CONCURRENCY:-4}
KEY_ALG=${KEY_ALG:-RS256}
SEED_TOKENS=${SEED_TOKENS:-0}
SEED_TOP=${SEED_TOP:-1}
OUT_DIR=${OUT_DIR:-$(mktemp -d -t wvs-callgrind.XXXXXX)}
SERVER_PID=""

die() { echo "profile_callgrind.sh: $*" >&2; exit 1; }
cleanup() { [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null || true; }
trap cleanup EXIT

for tool in valgrind ab curl callgrind_annotate; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done

if [[ -n ${WVS_AUTH_BIN:-} ]]; then
  BIN=$WVS_AUTH_BIN
else
  (cd "$REPO" && cargo build --release --quiet) || die "cargo build --release failed"
  TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
  [[ $TARGET_DIR == /* ]] || TARGET_DIR=$REPO/$TARGET_DIR
  BIN=$TARGET_DIR/release/wvs-auth
fi

DATA=$OUT_DIR/data KEYS=$OUT_DIR/keys
wvs() { "$BIN" --data-dir "$DATA" --keys-dir "$KEYS" "$@"; }
wvs keys init --alg "$KEY_ALG" >/dev/null
wvs group create bench >/dev/null
wvs project create bench/app >/dev/null
if ((SEED_TOKENS > 0)); then
  python3 "$REPO/bench/seed_db.py" "$DATA/wvs.db" --groups-top "$SEED_TOP" --tokens "$SEED_TOKENS"
  json=$(wvs token create --group sg0/s9 --name load --scopes read_registry,write_registry --json)
  scope_q="repository%3Asg0%2Fs9%2Ft9%2Fp9%2Fapp%3Apull%2Cpush"
else
  json=$(wvs token create --project bench/app --name load --scopes read_registry,write_registry --json)
  scope_q="repository%3Abench%2Fapp%3Apull%2Cpush"
fi
user=$(sed -n 's/^ *"username": "\(.*\)",\{0,1\}$/\1/p' <<<"$json")
secret=$(sed -n 's/^ *"token": "\(.*\)",\{0,1\}$/\1/p' <<<"$json")
auth=$(printf '%s:%s' "$user" "$secret" | base64 -w0)

port=$((20000 + RANDOM % 40000))
# --rsa-kernel library: choosing a kernel may execute the server again, and that new image
# would run outside valgrind. Instruction counts do not depend on the kernel's speed.
RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$OUT_DIR/callgrind.out" \
  "$BIN" --data-dir "$DATA" --keys-dir "$KEYS" serve --listen "127.0.0.1:$port" --workers 1 \
  --rsa-kernel library >"$OUT_DIR/valgrind.log" 2>&1 &
SERVER_PID=$!
healthy=0
for _ in $(seq 1 600); do
  kill -0 "$SERVER_PID" 2>/dev/null || die "server exited: $(tail -n 5 "$OUT_DIR/valgrind.log")"
  if [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/-/health" || true) == 200 ]]; then
    healthy=1
    break
  fi
  sleep 0.2
done
((healthy)) || die "not healthy under valgrind after 120 s"
# The first token request under valgrind is slow (aws-lc seeds its RNG): make it before ab.
curl -s -o /dev/null --max-time 120 -u "$user:$secret" \
  "http://127.0.0.1:$port/jwt/auth?service=container_registry&scope=$scope_q&account=${user/+/%2B}"
url="http://127.0.0.1:$port/jwt/auth?service=container_registry&scope=$scope_q&account=${user/+/%2B}"
ab -q -k -n "$REQUESTS" -c "$CONCURRENCY" -H "Authorization: Basic $auth" "$url" >"$OUT_DIR/ab.out"
grep -qE '^Non-2xx responses' "$OUT_DIR/ab.out" && die "non-200 answers: $(cat "$OUT_DIR/ab.out")"
kill -INT "$SERVER_PID"
wait "$SERVER_PID" || true
SERVER_PID=""

# Inclusive instructions per request of the functions that matter (one-time start-up work
# such as aws-lc's jitter-entropy seeding is in the totals, not per request).
callgrind_annotate --threshold=100 --inclusive=yes "$OUT_DIR/callgrind.out" >"$OUT_DIR/inclusive.txt" 2>/dev/null
per_req() {
  awk -v n="$REQUESTS" -v f="$1" 'index($0, f) { x = $1; gsub(/,/, "", x); printf "%-60s %10.0f\n", f, x / n; exit }' \
    "$OUT_DIR/inclusive.txt"
}
{
  echo "instructions per request (inclusive, $REQUESTS requests, callgrind Ir):"
  per_req "PROGRAM TOTALS"
  per_req "actix_http::h1::dispatcher::Dispatcher"
  per_req "wvs_auth::http::jwt_auth::respond"
  per_req "wvs_auth::registry::token::TokenIssuer::issue"
  per_req "wvs_auth::keys::signer::JwtSigner::sign"
  per_req "aws_lc_0_47_0_RSA_sign"
  per_req "aws_lc_0_47_0_ECDSA_do_sign"
  per_req "wvs_auth::http::login::login"
  per_req "wvs_auth::db::deploy_tokens::<impl wvs_auth::domain::store::DeployTokenLookup for wvs_auth::db::Db>::find_by_digest"
  per_req "wvs_auth::registry::grant"
  per_req "wvs_auth::db::projects::<impl wvs_auth::domain::store::ProjectDirectory for wvs_auth::db::Db>::owning_project"
  per_req "wvs_auth::http::jwt_auth::parse_get"
  per_req "serde_json::ser::format_escaped_str"
  per_req "actix_web::response::builder::HttpResponseBuilder::json"
  per_req "tree_jitter_initialize_once"
} | tee "$OUT_DIR/summary.txt"
echo "profile kept in $OUT_DIR (callgrind_annotate $OUT_DIR/callgrind.out)"
