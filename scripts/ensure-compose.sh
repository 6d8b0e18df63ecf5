#!/usr/bin/env bash
# Provides a Docker Compose v2 binary for the test that validates docker-compose.yml.
# Machines without Docker get it built from the Go module (about two minutes, once).
set -euo pipefail
cache="${VIDEOIMPORT_CACHE_DIR:-$(cd "$(dirname "$0")/.." && pwd)/.cache}"
target="$cache/bin/docker-compose"
version="v2.32.4"
if [ -x "$target" ]; then exit 0; fi
mkdir -p "$cache/bin"
if command -v go >/dev/null 2>&1; then
  GOFLAGS=-mod=mod GOBIN="$cache/gobin" go install "github.com/docker/compose/v2/cmd@$version"
  mv "$cache/gobin/cmd" "$target"
elif docker compose version >/dev/null 2>&1; then
  printf '#!/bin/sh\nexec docker compose "$@"\n' > "$target"
  chmod +x "$target"
else
  echo "cannot provide docker compose: neither Go nor a compose plugin is installed" >&2
  exit 1
fi
