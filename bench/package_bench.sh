#!/usr/bin/env bash
# Package realm benchmark for wvs-auth. See bench/README.md ("Package benchmark").
#
# 1. Downloads of one FILE_MB (10) MB generic package file through wvs-auth (Deploy-Token
#    header) against Debian's nginx serving the same file from disk without auth, in the
#    same run: ROUNDS rounds of `wrk -c CONNECTIONS (16)` on each, alternating; the ratio is
#    wvs-auth's bytes/s over nginx's of the same round.
# 2. The npm packument and the PyPI simple page of one package, requests/s with
#    BIG_PACKAGES (10^4) packages in the project against 10, alternating.
# 3. A Cargo index file, requests/s (full answers, and revalidations with If-None-Match)
#    for a crate with BIG_VERSIONS (10^3) versions against one with 10, alternating.
#    Then an artifact's maven-metadata.xml, requests/s with 10 versions against BIG_VERSIONS,
#    as mvn uploaded it and as made from the stored versions.
# 4. `cargo fetch` of a crate depending on FETCH_CRATES (50) crates, with a fresh CARGO_HOME,
#    from wvs-auth (token, auth-required) against the same index and crates copied to
#    nginx (no auth), alternating; the ratio is wvs-auth's wall time over nginx's.
# 5. Peak RSS of the server (VmHWM) while one UPLOAD_MB (1024) MB file is uploaded.
# Ends with one RESULT line. Exits non-zero on any failure (a non-2xx answer, a socket
# error), never because a ratio is low.
#
# Environment:
#   ROUNDS=3  DURATION=10s  CONNECTIONS=16  THREADS=2  FILE_MB=10  UPLOAD_MB=1024
#   BIG_PACKAGES=10000  BIG_VERSIONS=1000  FETCH_CRATES=50  KEEP_WORKDIR=0
#   WVS_AUTH_BIN (skip the build)
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
FILE_MB=${FILE_MB:-10}
UPLOAD_MB=${UPLOAD_MB:-1024}
BIG_PACKAGES=${BIG_PACKAGES:-10000}
BIG_VERSIONS=${BIG_VERSIONS:-1000}
FETCH_CRATES=${FETCH_CRATES:-50}
KEEP_WORKDIR=${KEEP_WORKDIR:-0}

REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/common.sh
source "$REPO/bench/common.sh"
for tool in wrk nginx curl python3 cargo; do
  command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install wrk nginx curl)"
done
build_release

WORK=$(mktemp -d)
NGINX_PID=""
cleanup() {
  stop_server
  if [[ -n $NGINX_PID ]]; then kill "$NGINX_PID" 2>/dev/null || true; fi
  if [[ $KEEP_WORKDIR == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

cli() { "$BIN" --data-dir "$WORK/data" --keys-dir "$WORK/keys" "$@"; }

log "setting up in $WORK"
cli keys init --alg ES256 >/dev/null
cli group create bench >/dev/null
for p in bench/app bench/small bench/big bench/crates10 bench/crates1000 bench/maven10 \
  bench/maven1000 bench/fetch; do cli project create "$p" >/dev/null; done
TOKEN=$(json_field "$(cli token create --group bench --name bench \
  --scopes read_package_registry,write_package_registry --json)" token)
[[ $TOKEN == wvsdt-* ]] || die "no token"

PORT=$(free_port)
RUST_LOG=warn "$BIN" --data-dir "$WORK/data" --keys-dir "$WORK/keys" serve \
  --listen "127.0.0.1:$PORT" --max-package-size "$((UPLOAD_MB + 1))MiB" \
  >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
URL=http://127.0.0.1:$PORT
wait_healthy "$URL" "$SERVER_PID" "$WORK/serve.log"

# --- 1. downloads against nginx ------------------------------------------------------------
mkdir -p "$WORK/www"
head -c "$((FILE_MB << 20))" /dev/urandom >"$WORK/www/file.bin"
# nginx's workers run as another user when it starts as root: let them read the file.
chmod 755 "$WORK" "$WORK/www"
chmod 644 "$WORK/www/file.bin"
GENERIC=$URL/api/v4/projects/bench%2Fapp/packages/generic/file/1.0.0/file.bin
curl -sf -H "Deploy-Token: $TOKEN" --upload-file "$WORK/www/file.bin" "$GENERIC" >/dev/null ||
  die "upload of the download file failed"
cmp <(curl -sf -H "Deploy-Token: $TOKEN" "$GENERIC") "$WORK/www/file.bin" ||
  die "the downloaded file differs"

NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes $CPUS;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $WORK/www;
  }
}
EOF
# start_nginx: nginx on NGINX_PORT serving $WORK/www, up to 10 s to answer.
start_nginx() {
  nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" >"$WORK/nginx/out.log" 2>&1 &
  NGINX_PID=$!
  local _
  for _ in $(seq 1 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$NGINX_PORT/file.bin" && return 0
    sleep 0.1
  done
  die "nginx does not answer: $(tail -n 3 "$WORK/nginx/error.log")"
}
start_nginx
cmp <(curl -sf "http://127.0.0.1:$NGINX_PORT/file.bin") "$WORK/www/file.bin" ||
  die "nginx does not serve the file"

# wrk_rps OUT URL [HEADER...]: requests/s of one wrk run; fails on answers of 400 and
# above or socket errors.
wrk_rps() {
  local out=$1 url=$2 header
  shift 2
  local args=(-t "$THREADS" -c "$CONNECTIONS" -d "$DURATION")
  for header in "$@"; do args+=(-H "$header"); done
  wrk "${args[@]}" "$url" >"$out" 2>&1 || die "wrk failed: $(tail -n 3 "$out")"
  if grep -q "Non-2xx or 3xx responses" "$out"; then die "non-2xx answers: $(grep Non-2xx "$out")"; fi
  if grep -q "Socket errors" "$out"; then die "socket errors: $(grep 'Socket errors' "$out")"; fi
  awk '/^Requests\/sec:/ { print $2 }' "$out"
}

DL_RATIOS="" WVS_MBS="" NGINX_MBS=""
for round in $(seq 1 "$ROUNDS"); do
  n=$(wrk_rps "$WORK/wrk-nginx-$round.txt" "http://127.0.0.1:$NGINX_PORT/file.bin")
  w=$(wrk_rps "$WORK/wrk-wvs-$round.txt" "$GENERIC" "Deploy-Token: $TOKEN")
  n_mbs=$(awk -v r="$n" -v m="$FILE_MB" 'BEGIN { printf "%.0f", r * m }')
  w_mbs=$(awk -v r="$w" -v m="$FILE_MB" 'BEGIN { printf "%.0f", r * m }')
  ratio=$(awk -v a="$w" -v b="$n" 'BEGIN { printf "%.2f", a / b }')
  log "[download round $round/$ROUNDS] nginx $n_mbs MB/s, wvs-auth $w_mbs MB/s, ratio $ratio"
  DL_RATIOS+=" $ratio" WVS_MBS+=" $w_mbs" NGINX_MBS+=" $n_mbs"
done
kill "$NGINX_PID" 2>/dev/null || true
NGINX_PID=""

# --- 2. index pages with 10^4 packages against 10 --------------------------------------------
# seed PROJECT COUNT: COUNT/2 npm and COUNT/2 PyPI packages (one version, one tiny file
# each) over one keep-alive connection, then the measured pair, `@bench/probe` and `probe`.
seed() {
  python3 - "$PORT" "$1" "$2" "$TOKEN" <<'PY'
import base64, hashlib, http.client, json, sys
port, project, count, token = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
conn = http.client.HTTPConnection("127.0.0.1", int(port))
base = f"/api/v4/projects/{project.replace('/', '%2F')}/packages"
def npm(name):
    data = f"tarball of {name}".encode()
    doc = {"_id": name, "name": name, "dist-tags": {"latest": "1.0.0"},
           "versions": {"1.0.0": {"name": name, "version": "1.0.0",
               "dist": {"shasum": hashlib.sha1(data).hexdigest()}}},
           "_attachments": {f"{name}-1.0.0.tgz": {"data": base64.b64encode(data).decode(), "length": len(data)}}}
    conn.request("PUT", f"{base}/npm/{name.replace('/', '%2f')}", json.dumps(doc),
                 {"Deploy-Token": token, "Content-Type": "application/json"})
    r = conn.getresponse(); r.read()
    assert r.status == 200, (name, r.status)
def pypi(name):
    data = f"sdist of {name}".encode()
    fields = {":action": "file_upload", "name": name, "version": "1.0", "requires_python": ">=3.8"}
    body = b""
    for k, v in fields.items():
        body += f'--XX\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
    body += f'--XX\r\nContent-Disposition: form-data; name="content"; filename="{name}-1.0.tar.gz"\r\n\r\n'.encode() + data + b"\r\n--XX--\r\n"
    conn.request("POST", f"{base}/pypi", body,
                 {"Deploy-Token": token, "Content-Type": "multipart/form-data; boundary=XX"})
    r = conn.getresponse(); r.read()
    assert r.status == 201, (name, r.status)
for i in range(count // 2):
    npm(f"@bench/pkg{i}")
    pypi(f"pkg{i}")
npm("@bench/probe")
pypi("probe")
PY
}
log "seeding 10 packages in bench/small and $BIG_PACKAGES in bench/big"
seed_started=$(now)
seed bench/small 10 || die "seeding bench/small failed"
seed bench/big "$BIG_PACKAGES" || die "seeding bench/big failed"
SEED_SECS=$(elapsed "$seed_started")

page() { echo "$URL/api/v4/projects/bench%2F$1/packages/$2"; }
NPM_SMALL="" NPM_BIG="" PYPI_SMALL="" PYPI_BIG=""
for round in $(seq 1 "$ROUNDS"); do
  for size in small big; do
    npm_rps=$(wrk_rps "$WORK/npm-$size-$round.txt" "$(page "$size" npm/@bench%2fprobe)" "Deploy-Token: $TOKEN")
    pypi_rps=$(wrk_rps "$WORK/pypi-$size-$round.txt" "$(page "$size" pypi/simple/probe/)" "Deploy-Token: $TOKEN")
    if [[ $size == small ]]; then NPM_SMALL+=" $npm_rps" PYPI_SMALL+=" $pypi_rps"; else NPM_BIG+=" $npm_rps" PYPI_BIG+=" $pypi_rps"; fi
    log "[index round $round/$ROUNDS] bench/$size: npm packument $npm_rps req/s, pypi simple page $pypi_rps req/s"
  done
done
NPM_RATIO=$(awk -v a="$(median "$NPM_BIG")" -v b="$(median "$NPM_SMALL")" 'BEGIN { printf "%.3f", a / b }')
PYPI_RATIO=$(awk -v a="$(median "$PYPI_BIG")" -v b="$(median "$PYPI_SMALL")" 'BEGIN { printf "%.3f", a / b }')

# --- 3. a Cargo index file with 10^3 versions against 10 -------------------------------------
# publish_crates PROJECT CRATE COUNT VERSIONS: COUNT crates named CRATE0… (CRATE itself when
# COUNT is 1) with VERSIONS versions each, published with Cargo's frame
# (u32 LE length, metadata JSON, u32 LE length, .crate) over one keep-alive connection.
# Each .crate is a real gzipped tarball, so `cargo fetch` can unpack it.
publish_crates() {
  python3 - "$PORT" "$TOKEN" "$@" <<'PY'
import http.client, io, json, struct, sys, tarfile
port, token, project, crate, count, versions = sys.argv[1:7]
count, versions = int(count), int(versions)
conn = http.client.HTTPConnection("127.0.0.1", int(port))
path = f"/api/v4/projects/{project.replace('/', '%2F')}/packages/cargo/api/v1/crates/new"
def tarball(name, vers):
    files = {
        "Cargo.toml": f'[package]\nname = "{name}"\nversion = "{vers}"\nedition = "2021"\n',
        "src/lib.rs": f"pub fn id() -> &'static str {{ \"{name} {vers}\" }}\n",
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for rel, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{name}-{vers}/{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()
for i in range(count):
    name = crate if count == 1 else f"{crate}{i}"
    for v in range(versions):
        vers = f"1.{v}.0"
        meta = json.dumps({"name": name, "vers": vers, "deps": [], "features": {},
                           "authors": ["bench"], "description": "bench crate"}).encode()
        data = tarball(name, vers)
        body = struct.pack("<I", len(meta)) + meta + struct.pack("<I", len(data)) + data
        conn.request("PUT", path, body, {"Authorization": token})
        r = conn.getresponse(); r.read()
        assert r.status == 200, (name, vers, r.status)
PY
}
log "publishing probe with 10 versions in bench/crates10 and $BIG_VERSIONS in bench/crates1000"
seed_started=$(now)
publish_crates bench/crates10 probe 1 10 || die "publishing to bench/crates10 failed"
publish_crates bench/crates1000 probe 1 "$BIG_VERSIONS" || die "publishing to bench/crates1000 failed"
CRATE_SEED_SECS=$(elapsed "$seed_started")

# The index file of `probe` (pr/ob/probe) and its ETag, for the revalidation runs.
index_url() { echo "$URL/api/v4/projects/bench%2F$1/packages/cargo/index/pr/ob/probe"; }
etag_of() {
  curl -sf -D - -o /dev/null -H "Authorization: $TOKEN" "$(index_url "$1")" |
    tr -d '\r' | awk -F': ' 'tolower($1) == "etag" { print $2 }'
}
# nginx serves copies of both files from disk: how fast the same bytes can go at all.
mkdir -p "$WORK/www/probe"
for size in crates10 crates1000; do
  curl -sf -H "Authorization: $TOKEN" -o "$WORK/www/probe/$size" "$(index_url $size)" ||
    die "cannot read probe's index file in bench/$size"
  log "bench/$size: probe's index file has $(wc -l <"$WORK/www/probe/$size") lines, $(wc -c <"$WORK/www/probe/$size") bytes"
done
chmod -R a+rX "$WORK/www"
start_nginx
ETAG_10=$(etag_of crates10)
ETAG_1000=$(etag_of crates1000)
[[ -n $ETAG_10 && -n $ETAG_1000 ]] || die "the index files carry no ETag"
CARGO_SMALL="" CARGO_BIG="" CARGO_304_SMALL="" CARGO_304_BIG="" NGINX_SMALL="" NGINX_BIG=""
for round in $(seq 1 "$ROUNDS"); do
  for size in crates10 crates1000; do
    etag=$ETAG_10
    [[ $size == crates1000 ]] && etag=$ETAG_1000
    full=$(wrk_rps "$WORK/cargo-$size-$round.txt" "$(index_url $size)" "Authorization: $TOKEN")
    reval=$(wrk_rps "$WORK/cargo304-$size-$round.txt" "$(index_url $size)" \
      "Authorization: $TOKEN" "If-None-Match: $etag")
    static=$(wrk_rps "$WORK/nginx-$size-$round.txt" "http://127.0.0.1:$NGINX_PORT/probe/$size")
    if [[ $size == crates10 ]]; then
      CARGO_SMALL+=" $full" CARGO_304_SMALL+=" $reval" NGINX_SMALL+=" $static"
    else
      CARGO_BIG+=" $full" CARGO_304_BIG+=" $reval" NGINX_BIG+=" $static"
    fi
    log "[cargo index round $round/$ROUNDS] $size: $full req/s (200), $reval req/s (304), nginx $static req/s"
  done
done
CARGO_RATIO=$(awk -v a="$(median "$CARGO_BIG")" -v b="$(median "$CARGO_SMALL")" 'BEGIN { printf "%.3f", a / b }')
NGINX_FILE_RATIO=$(awk -v a="$(median "$CARGO_BIG")" -v b="$(median "$NGINX_BIG")" 'BEGIN { printf "%.3f", a / b }')
CARGO_304_RATIO=$(awk -v a="$(median "$CARGO_304_BIG")" -v b="$(median "$CARGO_304_SMALL")" 'BEGIN { printf "%.3f", a / b }')

# --- 3b. Maven metadata with 10^3 versions against 10 ----------------------------------------
# deploy_maven PROJECT VERSIONS: VERSIONS versions of com.bench:probe (a jar each, then the
# artifact's maven-metadata.xml as mvn writes it) and of com.bench:bare (jars only, so its
# metadata is made from the stored versions), over one keep-alive connection.
deploy_maven() {
  python3 - "$PORT" "$TOKEN" "$@" <<'PY'
import http.client, sys
port, token, project, versions = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
conn = http.client.HTTPConnection("127.0.0.1", int(port))
base = f"/api/v4/projects/{project.replace('/', '%2F')}/packages/maven/com/bench"
def put(path, body):
    conn.request("PUT", f"{base}/{path}", body, {"Deploy-Token": token})
    r = conn.getresponse(); r.read()
    assert r.status in (200, 201, 204), (path, r.status)
listed = [f"1.{v}.0" for v in range(versions)]
for artifact in ("probe", "bare"):
    for v in listed:
        put(f"{artifact}/{v}/{artifact}-{v}.jar", f"jar of {artifact} {v}".encode())
lines = "".join(f"      <version>{v}</version>\n" for v in listed)
put("probe/maven-metadata.xml", (
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata>\n  <groupId>com.bench</groupId>\n"
    f"  <artifactId>probe</artifactId>\n  <versioning>\n    <latest>{listed[-1]}</latest>\n"
    f"    <release>{listed[-1]}</release>\n    <versions>\n{lines}    </versions>\n"
    "    <lastUpdated>20261203000000</lastUpdated>\n  </versioning>\n</metadata>\n").encode())
PY
}
log "deploying com.bench:probe and :bare with 10 versions to bench/maven10 and $BIG_VERSIONS to bench/maven1000"
seed_started=$(now)
deploy_maven bench/maven10 10 || die "deploying to bench/maven10 failed"
deploy_maven bench/maven1000 "$BIG_VERSIONS" || die "deploying to bench/maven1000 failed"
MAVEN_SEED_SECS=$(elapsed "$seed_started")
metadata_url() { echo "$URL/api/v4/projects/bench%2F$1/packages/maven/com/bench/$2/maven-metadata.xml"; }
for size in maven10 maven1000; do
  for artifact in probe bare; do
    count=$(curl -sf -H "Deploy-Token: $TOKEN" "$(metadata_url $size $artifact)" | grep -c '<version>') ||
      die "no metadata for $artifact in bench/$size"
    log "bench/$size: $artifact's maven-metadata.xml lists $count versions"
  done
done
MVN_SMALL="" MVN_BIG="" MVN_GEN_SMALL="" MVN_GEN_BIG=""
for round in $(seq 1 "$ROUNDS"); do
  for size in maven10 maven1000; do
    stored=$(wrk_rps "$WORK/mvn-$size-$round.txt" "$(metadata_url $size probe)" "Deploy-Token: $TOKEN")
    made=$(wrk_rps "$WORK/mvngen-$size-$round.txt" "$(metadata_url $size bare)" "Deploy-Token: $TOKEN")
    if [[ $size == maven10 ]]; then MVN_SMALL+=" $stored" MVN_GEN_SMALL+=" $made"; else MVN_BIG+=" $stored" MVN_GEN_BIG+=" $made"; fi
    log "[maven metadata round $round/$ROUNDS] $size: uploaded $stored req/s, generated $made req/s"
  done
done
MVN_RATIO=$(awk -v a="$(median "$MVN_BIG")" -v b="$(median "$MVN_SMALL")" 'BEGIN { printf "%.3f", a / b }')
MVN_GEN_RATIO=$(awk -v a="$(median "$MVN_GEN_BIG")" -v b="$(median "$MVN_GEN_SMALL")" 'BEGIN { printf "%.3f", a / b }')

# --- 4. cargo fetch of FETCH_CRATES crates, wvs-auth against nginx ---------------------------
log "publishing $FETCH_CRATES crates to bench/fetch"
publish_crates bench/fetch dep "$FETCH_CRATES" 1 || die "publishing to bench/fetch failed"
CARGO_INDEX=$URL/api/v4/projects/bench%2Ffetch/packages/cargo/index/
# The same index files and .crate files, copied out of wvs-auth, behind nginx with a
# config.json of its own (no auth).
mirror=$WORK/www/cargo
mkdir -p "$mirror/index" "$mirror/dl"
printf '{"dl":"http://127.0.0.1:%s/cargo/dl"}\n' "$NGINX_PORT" >"$mirror/index/config.json"
mkdir -p "$WORK/consumer/src"
: >"$WORK/consumer/src/lib.rs"
printf '[package]\nname = "consumer"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n' \
  >"$WORK/consumer/Cargo.toml"
for i in $(seq 0 $((FETCH_CRATES - 1))); do
  name=dep$i
  case ${#name} in
    3) rel=3/${name:0:1}/$name ;;
    *) rel=${name:0:2}/${name:2:2}/$name ;;
  esac
  mkdir -p "$mirror/index/$(dirname "$rel")" "$mirror/dl/$name/1.0.0"
  curl -sf -H "Authorization: $TOKEN" -o "$mirror/index/$rel" "${CARGO_INDEX}$rel" ||
    die "cannot read the index file of $name"
  curl -sf -H "Authorization: $TOKEN" -o "$mirror/dl/$name/1.0.0/download" \
    "$URL/api/v4/projects/bench%2Ffetch/packages/cargo/api/v1/crates/$name/1.0.0/download" ||
    die "cannot download $name"
  printf '%s = { version = "1", registry = "wvs" }\n' "$name" >>"$WORK/consumer/Cargo.toml"
done
chmod -R a+rX "$WORK/www"

# fetch_secs INDEX TOKEN: wall time of `cargo fetch` of the consumer with a fresh CARGO_HOME.
fetch_secs() {
  local home
  home=$(mktemp -d "$WORK/cargo-home.XXXX")
  printf '[registries.wvs]\nindex = "sparse+%s"\ncredential-provider = ["cargo:token"]\n' "$1" \
    >"$home/config.toml"
  rm -f "$WORK/consumer/Cargo.lock"
  local started
  started=$(now)
  (cd "$WORK/consumer" && CARGO_HOME=$home CARGO_REGISTRIES_WVS_TOKEN=$2 \
    CARGO_TARGET_DIR=$WORK/consumer-target cargo fetch --quiet) >"$home/fetch.log" 2>&1 ||
    die "cargo fetch from $1 failed: $(tail -n 5 "$home/fetch.log")"
  awk -v a="$started" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'
  [[ $(find "$home/registry/cache" -name '*.crate' | wc -l) -eq $FETCH_CRATES ]] ||
    die "cargo fetch from $1 did not download $FETCH_CRATES crates"
  rm -rf "$home"
}
FETCH_WVS="" FETCH_NGINX="" FETCH_RATIOS=""
for round in $(seq 1 "$ROUNDS"); do
  n=$(fetch_secs "http://127.0.0.1:$NGINX_PORT/cargo/index/" unused)
  w=$(fetch_secs "$CARGO_INDEX" "$TOKEN")
  ratio=$(awk -v a="$w" -v b="$n" 'BEGIN { printf "%.2f", a / b }')
  log "[cargo fetch round $round/$ROUNDS] $FETCH_CRATES crates: nginx ${n}s, wvs-auth ${w}s, ratio $ratio"
  FETCH_WVS+=" $w" FETCH_NGINX+=" $n" FETCH_RATIOS+=" $ratio"
done
kill "$NGINX_PID" 2>/dev/null || true
NGINX_PID=""

# --- 5. peak RSS of a 1 GiB upload -----------------------------------------------------------
stop_server
RUST_LOG=warn "$BIN" --data-dir "$WORK/data" --keys-dir "$WORK/keys" serve \
  --listen "127.0.0.1:$PORT" --max-package-size "$((UPLOAD_MB + 1))MiB" \
  >"$WORK/serve2.log" 2>&1 &
SERVER_PID=$!
wait_healthy "$URL" "$SERVER_PID" "$WORK/serve2.log"
rss_before=$(awk '/^VmHWM/ { print $2 }' "/proc/$SERVER_PID/status")
head -c "$((UPLOAD_MB << 20))" /dev/urandom >"$WORK/upload.bin"
up_started=$(now)
curl -sf -H "Deploy-Token: $TOKEN" --upload-file "$WORK/upload.bin" \
  "$URL/api/v4/projects/bench%2Fapp/packages/generic/big/1.0.0/upload.bin" >/dev/null ||
  die "the ${UPLOAD_MB} MB upload failed"
UP_SECS=$(elapsed "$up_started")
RSS_PEAK=$(awk '/^VmHWM/ { print $2 }' "/proc/$SERVER_PID/status")
rm -f "$WORK/upload.bin"

echo
echo "=== wvs-auth package benchmark ==="
echo "machine          : $CPUS CPUs, load average now $(cut -d' ' -f1-3 /proc/loadavg)"
echo "downloads        : ${FILE_MB} MB file, wrk -t $THREADS -c $CONNECTIONS -d $DURATION, $ROUNDS rounds alternating"
echo "  nginx MB/s     : $NGINX_MBS (median $(median "$NGINX_MBS"))"
echo "  wvs-auth MB/s  : $WVS_MBS (median $(median "$WVS_MBS"))"
echo "  ratio          : $DL_RATIOS (median $(median "$DL_RATIOS"); target >= 0.8)"
echo "index pages      : one package among 10 vs $BIG_PACKAGES (seeding took ${SEED_SECS}s)"
echo "  npm req/s      : 10: $NPM_SMALL  |  $BIG_PACKAGES: $NPM_BIG  (big/small $NPM_RATIO)"
echo "  pypi req/s     : 10: $PYPI_SMALL  |  $BIG_PACKAGES: $PYPI_BIG  (big/small $PYPI_RATIO)"
echo "cargo index      : probe's index file, 10 versions vs $BIG_VERSIONS (publishing took ${CRATE_SEED_SECS}s)"
echo "  200 req/s      : 10: $CARGO_SMALL  |  $BIG_VERSIONS: $CARGO_BIG  (big/small $CARGO_RATIO)"
echo "  304 req/s      : 10: $CARGO_304_SMALL  |  $BIG_VERSIONS: $CARGO_304_BIG  (big/small $CARGO_304_RATIO)"
echo "  nginx req/s    : 10: $NGINX_SMALL  |  $BIG_VERSIONS: $NGINX_BIG  (same files from disk; wvs-auth/nginx at $BIG_VERSIONS: $NGINX_FILE_RATIO)"
echo "maven metadata   : com.bench's maven-metadata.xml, 10 versions vs $BIG_VERSIONS (deploying took ${MAVEN_SEED_SECS}s)"
echo "  uploaded req/s : 10: $MVN_SMALL  |  $BIG_VERSIONS: $MVN_BIG  (big/small $MVN_RATIO)"
echo "  generated req/s: 10: $MVN_GEN_SMALL  |  $BIG_VERSIONS: $MVN_GEN_BIG  (big/small $MVN_GEN_RATIO)"
echo "cargo fetch      : $FETCH_CRATES crates, fresh CARGO_HOME each time, $ROUNDS rounds alternating"
echo "  nginx s        : $FETCH_NGINX (median $(median "$FETCH_NGINX"))"
echo "  wvs-auth s     : $FETCH_WVS (median $(median "$FETCH_WVS"))"
echo "  ratio          : $FETCH_RATIOS (median $(median "$FETCH_RATIOS"))"
echo "upload           : ${UPLOAD_MB} MB in ${UP_SECS}s; server VmHWM ${rss_before} kB before, ${RSS_PEAK} kB after (target < 65536 kB)"
echo "RESULT download_ratio=$(median "$DL_RATIOS") wvs_mb_s=$(median "$WVS_MBS") nginx_mb_s=$(median "$NGINX_MBS") npm_big_over_small=$NPM_RATIO pypi_big_over_small=$PYPI_RATIO cargo_big_over_small=$CARGO_RATIO cargo_304_big_over_small=$CARGO_304_RATIO cargo_big_over_nginx=$NGINX_FILE_RATIO maven_big_over_small=$MVN_RATIO maven_generated_big_over_small=$MVN_GEN_RATIO cargo_fetch_secs=$(median "$FETCH_WVS") cargo_fetch_nginx_secs=$(median "$FETCH_NGINX") upload_peak_rss_kb=$RSS_PEAK upload_secs=$UP_SECS"
