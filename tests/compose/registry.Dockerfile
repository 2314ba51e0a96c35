# A stand-in for `registry:2` (the stock CNCF distribution image docker-compose.yml runs)
# on machines that cannot pull it: Debian's docker-registry package, distribution 2.8 like
# registry:2, with what docker-compose.yml expects of that image: the config at
# /etc/docker/registry/config.yml (the compose file mounts deploy/*/config.yml over it),
# storage in /var/lib/registry, and `wget` for the health check (registry:2 has busybox's).
#
#   docker build -f tests/compose/registry.Dockerfile --build-arg BASE=IMAGE -t NAME EMPTY_DIR
#
# tests/it/compose_e2e.rs builds it on a debootstrapped Debian base (BASE).
ARG BASE=debian:bookworm-slim
FROM ${BASE}

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      docker-registry wget \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/registry

VOLUME ["/var/lib/registry"]
EXPOSE 5000
CMD ["docker-registry", "serve", "/etc/docker/registry/config.yml"]
