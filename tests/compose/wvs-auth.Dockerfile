# The runtime image around a wvs-auth binary built outside docker: the Dockerfile's
# `runtime` stage is exactly `FROM runtime-base` plus this COPY (keep the two alike), so
# what tests/it/compose_e2e.rs runs is the image users build, with the tests' binary.
#
#   docker build -f Dockerfile --target runtime-base -t wvs-auth-runtime-base EMPTY_DIR
#   cp target/release/wvs-auth DIR/
#   docker build -f tests/compose/wvs-auth.Dockerfile \
#       --build-arg RUNTIME_BASE=wvs-auth-runtime-base -t wvs-auth:local DIR
ARG RUNTIME_BASE=wvs-auth-runtime-base
FROM ${RUNTIME_BASE}
COPY wvs-auth /usr/local/bin/wvs-auth
