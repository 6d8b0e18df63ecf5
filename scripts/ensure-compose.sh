#!/usr/bin/env bash
# Provides a Docker Compose v2 binary for the test that validates docker-compose.yml:
# Docker's compose plugin when there is one, else the pinned release built from its Go
# module (about two minutes, once per machine: it is kept in the per-user tool cache,
# see `python -m videoimport_devstack compose --help`). Prints the binary's path.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v uv >/dev/null 2>&1; then uv=(uv); else uv=(python3 -m uv); fi
exec "${uv[@]}" run --frozen python -m videoimport_devstack compose
