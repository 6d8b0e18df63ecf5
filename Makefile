# Every target installs what it needs first, so each works from a clean clone.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PY := $(UV) run --frozen python
PYTEST_ARGS ?=
# Python writes the bytecode of what it imports (.gitignored) even where the environment
# says not to: a test run starts some 300 Python processes (services, the CLI), and
# without it each one compiled every module it imported again, a second of CPU apiece.
export PYTHONDONTWRITEBYTECODE :=
# Parallel test processes sharing one stack; a file's tests stay on one worker (they
# share module fixtures). Most tests wait on servers, so more workers than cores pay:
# on 2 cores, 4 took the suite from 910 s to 518 s; 5 took 223-244 s and 7 203-219 s
# (6: 228 s). Files go out in the order tests/conftest.py sorts them (longest first,
# unit tests last), not xdist's own (most tests first), which left the end-to-end
# files for the end.
TEST_WORKERS ?= 7
PARALLEL := -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

.PHONY: help uv install stack run test test-unit test-integration test-e2e test-docker lint typecheck check bench reliability asyncapi screenshots clean

help:
	@echo "make run      start the local stack and every service (Ctrl-C stops all)"
	@echo "make test     install what is missing, start the stack, run every test"
	@echo "make test-docker  the Docker deployment through testcontainers (needs a Docker daemon)"
	@echo "make check    ruff and mypy --strict"
	@echo "make bench    benchmarks"
	@echo "make reliability  kill and restart everything under load; check nothing was lost"

uv:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install -q uv

install: uv
	$(UV) sync --frozen
	$(PY) -m videoimport_devstack install

run: install
	$(PY) -m videoimport_devstack.run

stack: install
	$(PY) -m videoimport_devstack up --data-dir .data

test: install
	scripts/ensure-compose.sh
	$(UV) run --frozen pytest -p no:cacheprovider $(PARALLEL) $(PYTEST_ARGS)

test-unit: uv
	$(UV) sync --frozen
	$(UV) run --frozen pytest tests/unit -q $(PYTEST_ARGS)

test-integration: install
	scripts/ensure-compose.sh
	$(UV) run --frozen pytest tests/integration -q $(PARALLEL) $(PYTEST_ARGS)

test-e2e: install
	$(UV) run --frozen pytest tests/e2e -q $(PARALLEL) $(PYTEST_ARGS)

# docker-compose.yml built and run through testcontainers; no local stack. Without a
# Docker daemon the tier is skipped with one line saying why. Not part of `make test`.
test-docker: uv
	$(UV) sync --frozen
	$(UV) run --frozen pytest -p no:cacheprovider tests/docker -q -ra $(PYTEST_ARGS)

# The operator page's picture in the docs, taken by its browser test.
screenshots: install
	VIDEOIMPORT_WRITE_SCREENSHOTS=1 $(UV) run --frozen pytest -p no:cacheprovider -q \
		tests/e2e/test_operator_ui.py -k reads_a_finished_job $(PYTEST_ARGS)

lint: uv
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

typecheck: uv
	$(UV) run --frozen mypy libs/*/src services/*/src

check: lint typecheck

# BENCH_ARGS: e.g. "--only bulk --bulk-videos 2000"; the page is rewritten from the results.
BENCH_ARGS ?=
bench: install
	$(PY) -m benchmarks $(BENCH_ARGS)
	$(PY) -m benchmarks.performance_doc

# Its own stack in a temporary directory; about 20 minutes on two cores.
RELIABILITY_ARGS ?= --write-docs
reliability: install
	$(PY) -m reliability $(RELIABILITY_ARGS)

asyncapi: uv
	$(PY) scripts/gen_asyncapi.py

# The tools shared by every clone stay: see README.md, "Where the tools are cached".
clean:
	rm -rf .data .cache .venv deploy/*/node_modules
