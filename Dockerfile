# blockroute: built once (quickfix compiles from source in the build stage, whose compilers
# stay out of the final image), run as a non-root user.
#
# BASE: a Debian bookworm image with python3 (3.11) and its venv module. The official Python
# image by default; bench/image.sh builds one from Debian's own packages instead, for
# machines that reach Debian's archive but no image registry.
# EXTRAS: the optional extras to install (pyproject.toml); `ray` by default, since the Ray
# cluster of a sweep runs this image (`--build-arg EXTRAS=` leaves it out).
# pip's own settings (index, links, certificate), where the defaults do not reach PyPI, come
# as the build secret `pip.conf`: `--secret id=pip.conf,src=FILE` (bench/image.sh passes the
# settings of whoever runs it); they stay out of every image layer.
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
# Python's headers come with the official image; Debian's python3 needs python3-dev
RUN pkgs=build-essential; \
    python3 -c 'import os, sysconfig; raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
        || pkgs="$pkgs python3-dev"; \
    apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $pkgs \
 && rm -rf /var/lib/apt/lists/*
# a virtual environment: the one folder that the final stage copies, on either base
RUN python3 -m venv /opt/blockroute
WORKDIR /src
COPY pyproject.toml README.md ./
COPY router ./router
COPY simulators ./simulators
COPY dealers ./dealers
COPY models ./models
COPY bench ./bench
ARG EXTRAS=ray
# pip's cache survives the build, so that a change of the code does not compile quickfix
# again: that takes a pip recent enough to build it as a wheel (Debian's 23.0 installs it
# with setup.py, and caches nothing). xgboost's wheel pulls NCCL for its GPU code (about
# 470 MB), which the CPU models never load.
RUN --mount=type=secret,id=pip.conf \
    --mount=type=cache,target=/root/.cache/pip \
    export PIP_CONFIG_FILE=/run/secrets/pip.conf PIP_DISABLE_PIP_VERSION_CHECK=1 \
 && /opt/blockroute/bin/pip install --upgrade pip \
 && /opt/blockroute/bin/pip install ".${EXTRAS:+[$EXTRAS]}" \
 && /opt/blockroute/bin/pip uninstall --yes nvidia-nccl-cu12

FROM ${BASE}
RUN useradd --create-home --uid 10001 blockroute
# the package with its shipped models (package data), the dependencies and `blockroute`
COPY --from=build /opt/blockroute /opt/blockroute
WORKDIR /app
COPY config ./config
ENV PATH=/opt/blockroute/bin:$PATH \
    BLOCKROUTE_CONFIG_DIR=/app/config \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    PYTHONUNBUFFERED=1 \
    ORT_DISABLE_TELEMETRY=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    RAY_USAGE_STATS_ENABLED=0
# the last three: no usage reports to the libraries' vendors (router/vendor_telemetry.py), here
# too for the processes that Ray's cluster launcher starts without blockroute (`ray start`)
# the service's journal and FIX message store (`serve --data-dir /app/data`), and the working
# directory, so that the default run store (./blockroute.db) lands where the user may write
RUN mkdir /app/data && chown blockroute /app/data
VOLUME /app/data
WORKDIR /app/data
# FIX acceptor, HTTP API and dashboard
EXPOSE 9878 8080
USER blockroute
# numba compiles the simulator's kernels at their first use, a minute or two on a busy
# two-core machine, in every new container: compile them once here (a short run of every
# strategy), in a cache that any user may extend (an image run under another UID)
RUN blockroute simulate --scenario news-shock --strategies all --horizon 15m --qty 50000 \
        --db-url none >/dev/null \
 && chmod -R a+rwX "$NUMBA_CACHE_DIR"
ENTRYPOINT ["blockroute"]
# The service: docker run -p 9878:9878 -p 8080:8080 -e BLOCKROUTE_FIX_PASSWORD_OMS=...
#   -e BLOCKROUTE_API_TOKEN=... blockroute serve --data-dir /app/data --http-host 0.0.0.0
# A Ray worker: docker run --network host --entrypoint ray blockroute start --block
#   --address HEAD:6379 (see bench/image.sh)
CMD ["simulate", "--scenario", "news-shock"]
