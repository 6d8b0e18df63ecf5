# syntax=docker/dockerfile:1
# One image for every service; the compose file (or the orchestrator) picks the module
# to run: python -m videoimport_{api,ingester,relay,projector,notifier}, and the
# `videoimport` admin CLI. Build: docker build -t videoimport:0.1.0 .
#
# Both stages use the same Python image: the virtual environment built in the first
# one points at that interpreter's path.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# uv, pinned to the version the lock file is maintained with.
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
# The runtime members and, through them, the libs they import (events, eventlog,
# projects). Not the local stack (libs/devstack) nor the dev dependency group.
ARG RUNTIME_PACKAGES="--package videoimport-api --package videoimport-ingester --package videoimport-relay --package videoimport-projector --package videoimport-notifier"
WORKDIR /src

# Dependency layer: only the lock file and the manifests, so editing the sources
# reuses it. uv reads every workspace member's manifest to know the workspace, the
# local stack's included; its sources never enter the image (.dockerignore).
COPY pyproject.toml uv.lock ./
COPY libs/events/pyproject.toml libs/events/
COPY libs/eventlog/pyproject.toml libs/eventlog/
COPY libs/projects/pyproject.toml libs/projects/
COPY libs/devstack/pyproject.toml libs/devstack/
COPY services/api/pyproject.toml services/api/
COPY services/ingester/pyproject.toml services/ingester/
COPY services/relay/pyproject.toml services/relay/
COPY services/projector/pyproject.toml services/projector/
COPY services/notifier/pyproject.toml services/notifier/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace ${RUNTIME_PACKAGES}

# The sources of the runtime members, installed as wheels (--no-editable): the
# environment then needs nothing from /src and is all the runtime stage copies.
COPY libs/events/src libs/events/src
COPY libs/eventlog/src libs/eventlog/src
COPY libs/projects/src libs/projects/src
COPY services/api/src services/api/src
COPY services/ingester/src services/ingester/src
COPY services/relay/src services/relay/src
COPY services/projector/src services/projector/src
COPY services/notifier/src services/notifier/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable ${RUNTIME_PACKAGES}

FROM ${PYTHON_IMAGE} AS runtime
# ffprobe and ffmpeg: the ingester reads each stored video's media info and poster frame.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 videoimport \
    && useradd --system --uid 10001 --gid videoimport --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin videoimport
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
USER videoimport
# 8000: the API; 8081: a worker's VIDEOIMPORT_HEALTH_PORT (as the compose file sets
# it); 9100: VIDEOIMPORT_METRICS_PORT.
EXPOSE 8000 8081 9100
# Readiness of whichever service runs: a worker's health port when it has one, else
# the API's port. The image has no curl; urllib fails on a 503 as on a refused connection.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('VIDEOIMPORT_HEALTH_PORT') or os.environ.get('VIDEOIMPORT_PORT') or '8000'; urllib.request.urlopen('http://127.0.0.1:' + port + '/health/ready', timeout=4)"]
CMD ["python", "-m", "videoimport_api"]
