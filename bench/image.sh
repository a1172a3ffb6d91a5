#!/usr/bin/env bash
# The container image, built and run for real with podman, with each step's wall time:
#   base   a Debian bookworm base (python3 3.11 + venv) from Debian's packages (mmdebstrap),
#          for machines that reach Debian's archive but no image registry
#   build  the project's image on that base (Dockerfile, BASE build argument)
#   run    in the image: the README's main job (simulate news-shock); `serve` answering
#          /health to curl from outside the container; a Ray worker node joining a Ray head
#          started here, and `backtest --executor ray` from here running tasks on it
# Usage: bench/image.sh [base] [build] [run]      (no argument: all three)
#
# Needs root (or rootful podman), podman, runc and mmdebstrap (Debian: apt-get install podman
# runc mmdebstrap), and a Python with the project and its ray extra for the host's side
# (`pip install -e '.[ray]'`; PYTHON names it, default python3): Ray wants the same Ray
# version on every node. Containers use the host's network (ports: CONTRACT.md's 8080/9878
# for the service; 6380 for Ray's head, since Ray's usual 6379 is often a Redis's;
# IMAGE_HTTP_PORT, IMAGE_FIX_PORT, IMAGE_RAY_PORT).
#
# pip inside the build gets the settings of whoever runs this: `pip config list` (files and
# PIP_* variables) written out as a pip.conf and passed as the build secret `pip.conf`, or
# the file that PIP_CONF names; local paths in it (find-links, a file:// index, cert,
# constraint) are mounted read-only at the same place for the build stage only.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

PYTHON=${PYTHON:-python3}
TAG=${IMAGE_TAG:-localhost/blockroute:latest}
BASE_TAG=${IMAGE_BASE_TAG:-localhost/bookworm-python:latest}
EXTRAS=${IMAGE_EXTRAS-ray}
HTTP_PORT=${IMAGE_HTTP_PORT:-8080}
FIX_PORT=${IMAGE_FIX_PORT:-9878}
RAY_PORT=${IMAGE_RAY_PORT:-6380}
EPISODES=${IMAGE_EPISODES:-10}
work=$(mktemp -d "${TMPDIR:-/tmp}/blockroute-image.XXXXXX")
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(base build run)

# What made plain `podman run` fail on hosts without systemd and with cgroups v1 (setrlimit
# refused, crun refusing hybrid cgroups); override with PODMAN_FLAGS / CONTAINERS_CONF.
read -r -a podman_flags <<<"${PODMAN_FLAGS:---runtime runc --cgroup-manager=cgroupfs}"
if [ -z "${CONTAINERS_CONF:-}" ]; then
    printf '[containers]\ndefault_ulimits = []\n' >"$work/containers.conf"
    export CONTAINERS_CONF=$work/containers.conf
fi
pm() { podman "${podman_flags[@]}" "$@"; }

timings=()
now() { date +%s.%N; }
took() { # NAME START: record and print the wall time since START
    local s
    s=$(awk -v a="$2" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
    timings+=("$(printf '%-34s %8s s' "$1" "$s")")
    echo "== $1: $s s"
}

ray_head_pid=""
containers=()
cleanup() {
    local rc=$?
    for c in "${containers[@]}"; do pm rm -f -t 10 "$c" >/dev/null 2>&1 || true; done
    if [ -n "$ray_head_pid" ]; then
        # `ray start --block` stops the head's processes when it is told to stop: only ours
        kill "$ray_head_pid" 2>/dev/null || true
        wait "$ray_head_pid" 2>/dev/null || true
    fi
    if [ ${#timings[@]} -gt 0 ]; then
        echo
        echo "timings ($(nproc) cores, $(date -u +%Y-%m-%d)):"
        printf '  %s\n' "${timings[@]}"
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

has_step() { local s; for s in "${steps[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

# ---------------------------------------------------------------- base
if has_step base; then
    echo "== base: Debian bookworm, python3 + venv, from Debian's packages"
    t=$(now)
    mmdebstrap --quiet --variant=minbase --include=python3,python3-venv bookworm "$work/base.tar"
    pm import --quiet "$work/base.tar" "$BASE_TAG" >/dev/null
    rm -f "$work/base.tar"
    took "base (mmdebstrap + import)" "$t"
fi

# ---------------------------------------------------------------- build
if has_step build; then
    pip_conf=$work/pip.conf
    if [ -n "${PIP_CONF:-}" ]; then
        cp "$PIP_CONF" "$pip_conf"
    else
        # the effective settings, variables winning over files as they do for pip itself
        "$PYTHON" -m pip config list | "$PYTHON" -c '
import re, sys
conf: dict[str, dict[str, str]] = {}
lines = sys.stdin.read().splitlines()
for line in sorted(lines, key=lambda l: l.startswith(":env:")):
    m = re.match(r"^(:env:|[\w-]+)\.([\w-]+)=(.*)$", line)
    if not m or m[2] == "config-file":
        continue
    section = "global" if m[1] == ":env:" else m[1]
    conf.setdefault(section, {})[m[2]] = m[3].strip("\x27\"")
for section, items in conf.items():
    print(f"[{section}]")
    for key, value in items.items():
        print(f"{key} = {value}")
' >"$pip_conf"
    fi
    # Local paths named in the settings, mounted read-only for the build's RUN steps. A
    # file:// index is mounted from its parent: a PEP 503 tree often keeps its files beside
    # simple/ and links to them as ../../files/...
    mounts=()
    # shellcheck disable=SC2013 # values are lists of words (extra-index-url)
    for tok in $(sed -n 's/^[^#[][^=]*=//p' "$pip_conf"); do
        case $tok in
            file://*) p=$(dirname "${tok#file://}") ;;
            /*) p=$tok ;;
            *) continue ;;
        esac
        if [ -e "$p" ]; then mounts+=(-v "$p:$p:ro"); fi
    done
    echo "== build: $TAG on $BASE_TAG (extras: ${EXTRAS:-none}; pip settings:" \
        "$(grep -c = "$pip_conf") keys, $((${#mounts[@]} / 2)) local paths mounted)"
    build=(build --isolation=chroot --network=host
        --build-arg "BASE=$BASE_TAG" --build-arg "EXTRAS=$EXTRAS")
    t=$(now)
    # Two passes: the build stage with the mounts, then the whole image without them, its
    # build stage from the first pass's layers. Podman leaves a volume's mount point in
    # every layer that a RUN step makes, and the final image should not carry the host's
    # folders, empty.
    pm "${build[@]}" --target build "${mounts[@]}" --secret "id=pip.conf,src=$pip_conf" \
        "$repo"
    pm "${build[@]}" -t "$TAG" "$repo"
    took "build (image)" "$t"
    size=$(pm image inspect --format '{{.Size}}' "$TAG")
    base_size=$(pm image inspect --format '{{.Size}}' "$BASE_TAG" 2>/dev/null || echo 0)
    timings+=("$(printf '%-34s %8s MB (base %s MB)' "image size" \
        $((size / 1000000)) $((base_size / 1000000)))")
    # the final stage must not carry the build stage's compilers
    if pm run --rm --ulimit host --network=host --entrypoint sh "$TAG" -c \
        'command -v gcc || command -v g++ || command -v cc'; then
        echo "the image has a compiler: the build stage leaked into it" >&2
        exit 1
    fi
fi

# ---------------------------------------------------------------- run
if has_step run; then
    run=(run --ulimit host --network=host)

    echo "== (a) the README's main job: blockroute simulate --scenario news-shock"
    t=$(now)
    pm "${run[@]}" --rm "$TAG" simulate --scenario news-shock
    took "simulate news-shock (new container)" "$t"

    echo "== (b) blockroute serve, /health from outside the container"
    name=blockroute-image-serve-$$
    t=$(now)
    containers+=("$name")
    pm "${run[@]}" -d --name "$name" -e BLOCKROUTE_API_TOKEN=image-check \
        -e BLOCKROUTE_FIX_PASSWORD_OMS=image-check "$TAG" \
        serve --data-dir /app/data --http-host 0.0.0.0 --http-port "$HTTP_PORT" \
        --fix-port "$FIX_PORT" --mqtt-url none >/dev/null
    health=""
    for _ in $(seq 240); do
        health=$(curl -fsS --max-time 2 "http://127.0.0.1:$HTTP_PORT/health" 2>/dev/null) && break
        if [ "$(pm inspect --format '{{.State.Running}}' "$name")" != true ]; then
            pm logs "$name" >&2
            echo "serve stopped before answering /health" >&2
            exit 1
        fi
        sleep 0.5
    done
    [ -n "$health" ] || { pm logs "$name" >&2; echo "no answer on /health" >&2; exit 1; }
    took "serve: start to /health answered" "$t"
    echo "GET http://127.0.0.1:$HTTP_PORT/health -> $health"
    t=$(now)
    pm stop -t 30 "$name" >/dev/null
    pm logs "$name"
    pm rm "$name" >/dev/null
    took "serve: SIGTERM to stopped" "$t"

    echo "== (c) a Ray worker node in the container joins a head on this host"
    image_ray=$(pm "${run[@]}" --rm --entrypoint python3 "$TAG" -c \
        'import ray; print(ray.__version__)')
    host_ray=$("$PYTHON" -c 'import ray; print(ray.__version__)')
    if [ "$image_ray" != "$host_ray" ]; then
        echo "Ray $host_ray here but $image_ray in the image: every node needs the same" >&2
        exit 1
    fi
    # Recent Rays (2.5x) turn token authentication on when ~/.ray/auth_token exists, and
    # then refuse a node or a driver without the token: this run's own, in the environment
    # of the head, the driver and the container's node (older Rays ignore these variables).
    export RAY_AUTH_MODE=token
    RAY_AUTH_TOKEN=$("$PYTHON" -c 'import secrets; print(secrets.token_hex(32))')
    export RAY_AUTH_TOKEN
    t=$(now)
    # a temp dir of our own: this run's logs, apart from any other Ray on the host
    "$PYTHON" -c 'from ray.scripts.scripts import main; main()' start --head --block \
        --port "$RAY_PORT" --num-cpus 1 --include-dashboard false \
        --temp-dir "$work/ray" >"$work/ray-head.log" 2>&1 &
    ray_head_pid=$!
    address=127.0.0.1:$RAY_PORT
    nodes() { # alive nodes, or nothing while the head is not up
        "$PYTHON" -c '
import logging, sys, ray
ray.init(address=sys.argv[1], logging_level=logging.ERROR, log_to_driver=False)
print(sum(n["Alive"] for n in ray.nodes()))
' "$address" 2>/dev/null || true
    }
    for _ in $(seq 120); do [ "$(nodes)" = 1 ] && break; sleep 1; done
    [ "$(nodes)" = 1 ] || { cat "$work/ray-head.log" >&2; echo "no Ray head" >&2; exit 1; }
    took "ray head up (host, 1 CPU)" "$t"

    name=blockroute-image-ray-$$
    t=$(now)
    containers+=("$name")
    # The same network as the head, so the worker's ports must not collide with the
    # head's: ranges of their own. The workers read the scenarios at the driver's
    # --config-dir, so the configuration is mounted at the same path (as on a cluster
    # where every node runs this image). Python's patch version may differ from the host's
    # (Debian's 3.11.2 against whatever runs here); Ray compares it unless told "minor".
    pm "${run[@]}" -d --name "$name" --shm-size 512m \
        -v "$repo/config:$repo/config:ro" \
        -e RAY_DEFAULT_PYTHON_VERSION_MATCH_LEVEL=minor -e RAY_AUTH_MODE -e RAY_AUTH_TOKEN \
        --entrypoint ray "$TAG" start --block --address "$address" --num-cpus 1 \
        --object-store-memory 200000000 \
        --node-manager-port 20380 --object-manager-port 20381 \
        --runtime-env-agent-port 20382 --dashboard-agent-grpc-port 20383 \
        --dashboard-agent-listen-port 20384 --metrics-export-port 20385 \
        --min-worker-port 20400 --max-worker-port 20499 >/dev/null
    for _ in $(seq 120); do
        [ "$(nodes)" = 2 ] && break
        if [ "$(pm inspect --format '{{.State.Running}}' "$name")" != true ]; then
            pm logs "$name" >&2
            echo "the Ray worker's container stopped" >&2
            exit 1
        fi
        sleep 1
    done
    [ "$(nodes)" = 2 ] || { pm logs "$name" >&2; echo "the worker did not join" >&2; exit 1; }
    took "ray worker joined (container)" "$t"

    # shellcheck disable=SC2054 # the commas are the scenarios' and strategies' lists
    bt=(--config-dir "$repo/config" backtest --scenarios calm,news-shock --strategies twap,sor
        --episodes "$EPISODES" --no-hindsight --db-url none)
    t=$(now)
    "$PYTHON" -m router.cli "${bt[@]}" --executor ray --ray-address "$address" \
        --json "$work/ray.json"
    took "backtest on ray (2 nodes, 2 CPUs)" "$t"
    t=$(now)
    "$PYTHON" -m router.cli "${bt[@]}" --workers 1 --json "$work/local.json" >/dev/null
    took "backtest local (1 worker)" "$t"
    "$PYTHON" -c '
import json, sys
ray, local = (json.load(open(p))["rows"] for p in sys.argv[1:])
assert ray == local, "the rows on Ray differ from the local run"
print(f"rows on Ray == rows of the local run ({len(ray)} rows)")
' "$work/ray.json" "$work/local.json"
    # Each task's worker writes ":task_name:NAME" to its log as it starts the task; a node
    # that joins takes the head's temp dir (recent Rays) or its own default, /tmp/ray
    # shellcheck disable=SC2016 # expanded by the sh that runs it
    count='cat "$0"/session_latest/logs/worker-*.out "$1"/session_latest/logs/worker-*.out \
        2>/dev/null | grep -c "^:task_name:run_batch"'
    in_container=$(pm exec "$name" sh -c "$count" "$work/ray" /tmp/ray || true)
    on_host=$(sh -c "$count" "$work/ray" /nonexistent || true)
    echo "run_batch tasks: ${in_container:-0} on the container's node, ${on_host:-0} on the host's head"
    [ "${in_container:-0}" -gt 0 ] || { echo "the container's node ran no task" >&2; exit 1; }
fi
