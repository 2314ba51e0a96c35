#!/usr/bin/env bash
# Issue 17 item 5: wvs-auth as the token realm of a distribution v3.x registry, checked by
# hand (CI keeps Debian's distribution 2.8). For each configuration it starts wvs-auth and
# the v3 registry on 127.0.0.1, pushes an image with skopeo (and docker, when its daemon
# answers) and pulls it back, and prints one PASS/FAIL line:
#
#   (a) rootcertbundle     + default header (x5c)   expected: accepted
#   (b) jwks only          + --token-header kid     expected: accepted
#   (c) jwks only          + default header (x5c)   expected: refused (3.x verifies an x5c
#                                                   chain against rootcertbundle only)
#   (d) rootcertbundle     + --token-header kid     expected: accepted (kid = the RFC 7638
#                                                   thumbprint of a bundle certificate)
#
#   bash bench/v3_check.sh REGISTRY_BIN [WVS_AUTH_BIN]
#
# REGISTRY_BIN is a distribution v3.x `registry` binary (its cmd/registry) that you built or
# installed yourself: this repository holds none of distribution's code, and no script here
# downloads or builds it. WVS_AUTH_BIN (or the second argument) skips `cargo build
# --release`. Exits non-zero when any configuration is not as expected.
# See bench/README.md.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/common.sh
source "$REPO/bench/common.sh"

[[ $# -ge 1 && $# -le 2 ]] || die "usage: bash bench/v3_check.sh REGISTRY_BIN [WVS_AUTH_BIN]"
REGISTRY_BIN=$1
[[ -x $REGISTRY_BIN ]] || die "$REGISTRY_BIN is not an executable registry binary"
[[ $# -eq 2 ]] && WVS_AUTH_BIN=$2
# docker too: auto (when `docker info` answers), 1 (required), 0 (skopeo only).
DOCKER=${DOCKER:-auto}
# Upper bound for one skopeo or docker command, seconds.
COMMAND_LIMIT=${COMMAND_LIMIT:-120}
KEEP_WORKDIR=${KEEP_WORKDIR:-0}
REG_PID=""

for tool in skopeo curl python3 timeout; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
case $DOCKER in
  auto) if command -v docker >/dev/null && timeout 20 docker info >/dev/null 2>&1; then DOCKER=1; else DOCKER=0; fi ;;
  1) timeout 20 docker info >/dev/null 2>&1 || die "DOCKER=1 but the docker daemon does not answer" ;;
  0) ;;
  *) die "DOCKER must be auto, 1 or 0" ;;
esac

WORK=$(mktemp -d -t wvs-v3.XXXXXX)
DOCKER_IMAGES=()
stop_registry() {
  local pid=$REG_PID _
  [[ -n $pid ]] || return 0
  REG_PID=""
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  stop_server
  stop_registry
  local image
  for image in "${DOCKER_IMAGES[@]}"; do
    DOCKER_CONFIG=$WORK/docker timeout 60 docker rmi --force "$image" >/dev/null 2>&1 || true
  done
  if [[ $KEEP_WORKDIR == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'echo "$(basename "$0"): line $LINENO: a command failed (status $?)" >&2' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- distribution v3
# `registry --version` prints: registry github.com/distribution/distribution/v3 VERSION[ COMMIT]
VERSION=$("$REGISTRY_BIN" --version 2>&1 | head -n 1 | awk '{print $3}')
COMMIT=$("$REGISTRY_BIN" --version 2>&1 | head -n 1 | awk '{print $4}')
[[ $VERSION == v3.* ]] || die "$REGISTRY_BIN is not distribution v3.x: $("$REGISTRY_BIN" --version 2>&1 | head -n 1)"
log "registry: $("$REGISTRY_BIN" --version 2>&1 | head -n 1)"

# ---------------------------------------------------------------- wvs-auth
build_release
wvs() { "$BIN" --data-dir "$WORK/data" --keys-dir "$WORK/keys" "$@"; }
make_load_token RS256
USER_=$LOAD_USER
SECRET_=$LOAD_SECRET
wvs keys bundle >"$WORK/bundle.pem"

# ---------------------------------------------------------------- an image to push
# An OCI layout with one layer holding one file; the manifest digest is what comes back.
python3 - "$WORK/layout" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile, time
root = sys.argv[1]
os.makedirs(os.path.join(root, "blobs", "sha256"))
def put(data, media_type):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(root, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}
content = ("wvs-auth v3 check %f\n" % time.time()).encode()
tar = io.BytesIO()
with tarfile.open(fileobj=tar, mode="w") as t:
    info = tarfile.TarInfo("content.txt")
    info.size = len(content)
    t.addfile(info, io.BytesIO(content))
diff_id = "sha256:" + hashlib.sha256(tar.getvalue()).hexdigest()
layer = put(gzip.compress(tar.getvalue(), mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip")
config = put(json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode(),
             "application/vnd.oci.image.config.v1+json")
manifest = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": config, "layers": [layer]}).encode(),
               "application/vnd.oci.image.manifest.v1+json")
manifest["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
with open(os.path.join(root, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [manifest]}, f)
with open(os.path.join(root, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
PY
manifest_digest() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1] + "/index.json"))["manifests"][0]["digest"])' "$1"; }
IMAGE_DIGEST=$(manifest_digest "$WORK/layout")

# skopeo with its own policy, registries.conf and auth file: nothing in /etc/containers or
# the home directory decides the outcome.
mkdir -p "$WORK/skopeo"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$WORK/skopeo/policy.json"
: >"$WORK/skopeo/registries.conf"
echo '{}' >"$WORK/skopeo/auth.json"
skopeo_() {
  HOME=$WORK/skopeo XDG_RUNTIME_DIR=$WORK/skopeo XDG_CONFIG_HOME=$WORK/skopeo \
    REGISTRY_AUTH_FILE=$WORK/skopeo/auth.json CONTAINERS_REGISTRIES_CONF=$WORK/skopeo/registries.conf \
    timeout "$COMMAND_LIMIT" skopeo --policy "$WORK/skopeo/policy.json" "$@"
}
mkdir -p "$WORK/docker"
docker_() { DOCKER_CONFIG=$WORK/docker timeout "$COMMAND_LIMIT" docker "$@"; }

# ---------------------------------------------------------------- one configuration
# start_pair NAME TRUST HEADER: wvs-auth with HEADER, the registry trusting it by TRUST
# (rootcertbundle: `keys bundle`; jwks: GET /-/jwks of that server, nothing else); sets HOST.
start_pair() {
  local name=$1 trust=$2 header=$3 auth_port reg_port code i
  auth_port=$(free_port) || die "no free port"
  RUST_LOG=info "$BIN" --data-dir "$WORK/data" --keys-dir "$WORK/keys" serve \
    --listen "127.0.0.1:$auth_port" --token-header "$header" >"$WORK/$name-wvs-auth.log" 2>&1 &
  SERVER_PID=$!
  wait_healthy "http://127.0.0.1:$auth_port" "$SERVER_PID" "$WORK/$name-wvs-auth.log"
  REALM=http://127.0.0.1:$auth_port/jwt/auth
  local trust_line
  if [[ $trust == jwks ]]; then
    curl -sf "http://127.0.0.1:$auth_port/-/jwks" >"$WORK/$name-jwks.json" || die "[$name] GET /-/jwks failed"
    trust_line="jwks: $WORK/$name-jwks.json"
  else
    trust_line="rootcertbundle: $WORK/bundle.pem"
  fi
  # A port free when probed can be taken before the registry binds it (other tests on this
  # machine pick random ports too): then it starts again on another, three times at most.
  local attempt
  for attempt in 1 2 3; do
    reg_port=$(free_port) || die "no free port"
    while [[ $reg_port == "$auth_port" ]]; do reg_port=$(free_port) || die "no free port"; done
    HOST=127.0.0.1:$reg_port
    cat >"$WORK/$name-config.yml" <<YAML
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $WORK/$name-storage
  delete:
    enabled: false
http:
  addr: $HOST
  secret: $(openssl rand -hex 16 2>/dev/null || echo "v3-check-$RANDOM$RANDOM")
auth:
  token:
    realm: $REALM
    service: container_registry
    issuer: wvs-auth
    $trust_line
YAML
    # No OpenTelemetry export: by default v3 sends traces to localhost:4318.
    OTEL_TRACES_EXPORTER=none "$REGISTRY_BIN" serve "$WORK/$name-config.yml" >"$WORK/$name-registry.log" 2>&1 &
    REG_PID=$!
    for i in $(seq 1 300); do
      if ! kill -0 "$REG_PID" 2>/dev/null; then
        wait "$REG_PID" 2>/dev/null || true
        REG_PID=""
        grep -q 'address already in use' "$WORK/$name-registry.log" && continue 2
        die "[$name] registry exited at start: $(grep -E 'level=(fatal|error|panic)|panic:' "$WORK/$name-registry.log" | tail -n 3 || tail -n 3 "$WORK/$name-registry.log")"
      fi
      code=$(curl -s -o /dev/null -w '%{http_code}' "http://$HOST/v2/" || true)
      [[ $code == 401 ]] && return 0
      sleep 0.1
    done
    die "[$name] registry did not answer GET /v2/ with 401 within 30 s: $(tail -n 3 "$WORK/$name-registry.log")"
  done
  die "[$name] registry found no free port in 3 attempts: $(tail -n 3 "$WORK/$name-registry.log")"
}

# header_fields: the field names of a token's header from this wvs-auth, sorted.
header_fields() {
  local token
  token=$(curl -s -u "$USER_:$SECRET_" \
    "$REALM?service=container_registry&scope=$(urlencode repository:bench/app:pull,push)" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])') || return 1
  python3 -c 'import base64,json,sys; h=sys.argv[1].split(".")[0]; print(",".join(sorted(json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4))))))' "$token"
}

# first_match REGEX: the first case-insensitive match in stdin, or nothing; never fails
# (an assignment from a failing substitution would end the script under set -e).
first_match() { grep -oiE "$1" | head -n 1 || true; }

FAILED=0
RESULTS=()
# check NAME "DESCRIPTION" TRUST HEADER accept|refuse [REASON]: REASON, a regex, is why the
# registry must refuse (from its log).
check() {
  local name=$1 what=$2 trust=$3 header=$4 expect=$5 reason=${6:-} fields got detail="" ok=1 out
  log "[$name] $what"
  start_pair "$name" "$trust" "$header"
  fields=$(header_fields) || die "[$name] no token from wvs-auth"
  case $header in
    x5c) [[ $fields == alg,kid,typ,x5c ]] || { ok=0; detail+=" header [$fields], expected x5c;"; } ;;
    kid) [[ $fields == alg,kid,typ ]] || { ok=0; detail+=" header [$fields], expected no x5c;"; } ;;
  esac
  local dest=docker://$HOST/bench/app:$name
  if out=$(skopeo_ copy --quiet --dest-tls-verify=false --dest-creds "$USER_:$SECRET_" \
    "oci:$WORK/layout:latest" "$dest" 2>&1); then
    got=accept
    rm -rf "$WORK/$name-out"
    if skopeo_ copy --quiet --src-tls-verify=false --src-creds "$USER_:$SECRET_" \
      "$dest" "oci:$WORK/$name-out:out" >"$WORK/$name-pull.out" 2>&1 &&
      [[ $(manifest_digest "$WORK/$name-out") == "$IMAGE_DIGEST" ]]; then
      detail+=" skopeo push+pull ok;"
    else
      ok=0
      detail+=" skopeo pushed but the pull failed or differs: $(tail -n 2 "$WORK/$name-pull.out" | tr '\n' ' ');"
    fi
  else
    got=refuse
    if grep -qiE 'unauthorized|authentication required|denied' <<<"$out"; then
      detail+=" skopeo push refused ($(first_match 'unauthorized([a-z: ]*[a-z])?' <<<"$out"));"
    else
      ok=0
      detail+=" skopeo push failed, not with an auth error: $(tail -n 2 <<<"$out" | tr '\n' ' ');"
    fi
  fi
  if [[ $DOCKER == 1 ]]; then
    local ref=$HOST/bench/app:$name-docker dgot
    mkdir -p "$WORK/$name-context"
    echo "wvs-auth v3 check $name $(date +%s%N)" >"$WORK/$name-context/content.txt"
    printf 'FROM scratch\nCOPY content.txt /\n' >"$WORK/$name-context/Dockerfile"
    docker_ build --quiet --tag "$ref" "$WORK/$name-context" >"$WORK/$name-build.out" 2>&1 ||
      die "[$name] docker build failed: $(tail -n 3 "$WORK/$name-build.out")"
    DOCKER_IMAGES+=("$ref")
    local id
    id=$(docker_ image inspect --format '{{.Id}}' "$ref")
    if docker_ login --username "$USER_" --password-stdin "$HOST" <<<"$SECRET_" >"$WORK/$name-docker.out" 2>&1 &&
      docker_ push "$ref" >>"$WORK/$name-docker.out" 2>&1; then
      dgot=accept
      if docker_ rmi "$ref" >/dev/null && docker_ pull "$ref" >>"$WORK/$name-docker.out" 2>&1 &&
        [[ $(docker_ image inspect --format '{{.Id}}' "$ref") == "$id" ]]; then
        detail+=" docker login+push+pull ok;"
      else
        ok=0
        detail+=" docker pushed but the pull failed or differs;"
      fi
    else
      dgot=refuse
      detail+=" docker login refused ($(first_match 'unauthorized([a-z: ]*[a-z])?' <"$WORK/$name-docker.out"));"
    fi
    docker_ logout "$HOST" >/dev/null 2>&1 || true
    [[ $dgot == "$got" ]] || { ok=0; detail+=" docker and skopeo disagree;"; }
  fi
  # Why the registry refused, from its log ("failed to verify token: ..." at info level):
  # an expected refusal must be for the expected reason, an acceptance must have none.
  local reasons
  reasons=$(sed -n 's/.*msg="failed to verify token: \([^"]*\)".*/\1/p' "$WORK/$name-registry.log" | sort -u | paste -sd ';' -)
  if [[ $got == refuse ]]; then
    detail+=" registry: \"${reasons:-no reason logged}\""
    [[ -n $reason && $reasons =~ $reason ]] || { ok=0; detail+=" (expected \"$reason\");"; }
  elif [[ -n $reasons ]]; then
    ok=0
    detail+=" but the registry also refused tokens: \"$reasons\";"
  fi
  [[ $got == "$expect" ]] || ok=0
  local verdict=PASS
  ((ok)) || { verdict=FAIL; FAILED=1; }
  RESULTS+=("$verdict ($name) $what: expected $expect, got $got;${detail%;}")
  log "${RESULTS[-1]}"
  stop_registry
  stop_server
}

check a "rootcertbundle + default header (x5c)" rootcertbundle x5c accept
check b "jwks only + --token-header kid" jwks kid accept
check c "jwks only + default header (x5c)" jwks x5c refuse 'x509: certificate signed by unknown authority'
check d "rootcertbundle + --token-header kid" rootcertbundle kid accept

{
  echo "=== wvs-auth with distribution $VERSION (${COMMIT:-no commit recorded in the binary}) ==="
  echo "registry : $("$REGISTRY_BIN" --version 2>&1 | head -n 1 | cut -d' ' -f2-)"
  echo "wvs-auth : $BIN ($("$BIN" --version))"
  echo "clients  : $(skopeo --version)$( ((DOCKER)) && echo ", docker $(docker version --format '{{.Server.Version}}' 2>/dev/null)")"
  printf '%s\n' "${RESULTS[@]}"
  echo "RESULT $( ((FAILED)) && echo FAIL || echo PASS )"
}
exit "$FAILED"
