# wvs-auth container image.
#
#   docker build -t wvs-auth .
#   docker run -p 5050:5050 -v wvs-data:/data -v wvs-keys:/keys wvs-auth
#
# Stages: `runtime-base` (the OS, user, directories, health check and command), `build`
# (cargo), `runtime` (runtime-base plus the binary). The runtime stage is all of
# runtime-base, so an image made of runtime-base and a binary built elsewhere is the same
# image: tests/it/compose_e2e.rs builds `--target runtime-base` with
# `--build-arg RUNTIME_BASE=` a debootstrapped Debian (it has no registry to pull from)
# and adds the binary the tests built (tests/compose/wvs-auth.Dockerfile).
#
# Plain Dockerfile syntax (no BuildKit-only features), so the legacy builder used by
# docker-compose 1.x builds it as well as `docker buildx build`.

ARG RUST_VERSION=1
ARG DEBIAN_RELEASE=bookworm
# Any Debian of that release with apt; glibc must match the build stage's.
ARG RUNTIME_BASE=debian:${DEBIAN_RELEASE}-slim

########################################################################################
# Runtime base: everything of the runtime image but the binary
########################################################################################
# debian-slim rather than distroless: the health check needs an HTTP client (curl), the
# compose key-init service needs /bin/sh and the git realm runs `git http-backend`; glibc
# matches the build stage. No init process is needed: actix-web handles SIGTERM/SIGINT
# itself as PID 1.
FROM ${RUNTIME_BASE} AS runtime-base

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates curl git \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 wvs \
 && useradd --system --uid 10001 --gid wvs --home-dir /data --no-create-home \
            --shell /usr/sbin/nologin wvs \
 && mkdir -p /data /keys /certs \
 && chown wvs:wvs /data /keys /certs \
 && chmod 0700 /keys \
 && chmod 0755 /certs

# Same defaults as the CMD flags, for `docker exec ... wvs-auth token create ...`.
ENV WVS_AUTH_DATA_DIR=/data \
    WVS_AUTH_KEYS_DIR=/keys \
    RUST_LOG=info

# Empty named volumes mounted on these paths start out owned by wvs (docker copies the
# image directory's owner and mode), so the non-root user can create the database, the
# 0600 private keys, and export the public bundle (`wvs-auth keys bundle >
# /certs/bundle.pem`, see docker-compose.yml) into a volume a registry mounts read-only.
VOLUME ["/data", "/keys"]
USER wvs:wvs
WORKDIR /data
EXPOSE 5050

HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS -o /dev/null http://127.0.0.1:5050/-/health || exit 1

CMD ["wvs-auth","--data-dir","/data","--keys-dir","/keys","serve","--listen","0.0.0.0:5050"]

########################################################################################
# Build stage
########################################################################################
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src

# 1. Dependencies only, cached until Cargo.toml / Cargo.lock change. Built against a
#    stub main.rs; if the manifest names targets the stub cannot satisfy (explicit
#    [[bench]], [lib] path, build script ...) this step only loses the cache: the real
#    build below still runs with --locked and reports real errors. rusqlite ("bundled")
#    and aws-lc-sys compile C with the gcc the rust image ships; aws-lc-sys 0.47 needs
#    no cmake/clang on x86_64/aarch64 Linux.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src \
 && echo 'fn main() {}' > src/main.rs \
 && (cargo build --release --locked --bin wvs-auth \
     || echo "warning: dependency pre-build failed; continuing without the cache layer") \
 && rm -rf src target/release/wvs-auth target/release/deps/wvs_auth-* \
           target/release/.fingerprint/wvs-auth-*

# 2. The crate itself (.dockerignore keeps target/, data/, keys/ and secrets out).
COPY . .
RUN find src -name '*.rs' -exec touch {} + \
 && cargo build --release --locked --bin wvs-auth \
 && install -D -m 0755 target/release/wvs-auth /out/wvs-auth

########################################################################################
# Runtime stage
########################################################################################
# Nothing but the binary on top of runtime-base (tests/compose/wvs-auth.Dockerfile does
# the same with a prebuilt one). COPY runs as root whatever USER says: root owns it.
FROM runtime-base AS runtime
COPY --from=build /out/wvs-auth /usr/local/bin/wvs-auth
