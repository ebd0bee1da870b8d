# Lesplanner — the two commands a newcomer needs: `make run` and `make test`.
SHELL := bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
# pip on some machines warns about unreachable extra index folders; keep real errors visible.
QUIET_PIP := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
VENV := .venv
# Test processes (pytest-xdist); each starts its own PostgreSQL server in the Postgres pass.
TEST_WORKERS ?= 2
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# The locks pin the whole dependency tree with the sha256 of every file, for any platform and any
# Python from 3.11 on; pip installs them with --require-hashes. The pip that `python -m venv`
# brings is used as it is: upgrading it from the index would be the one unchecked download.
LOCK := $(VENV)/bin/uv pip compile --quiet --generate-hashes --universal --python-version 3.11 \
	--custom-compile-command "make lock" $(LOCK_ARGS)

.PHONY: run test bench mutate mutate-quick lint format lock setup setup-dev system-deps migrate clean

$(VENV)/.runtime: requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PIP) install -q --require-hashes -r requirements.lock $(QUIET_PIP)
	@touch $@

# The test tools are not compiled to bytecode at install (~30 s of a fresh clone's `make test`):
# the test run caches what it imports (PYTEST below), which is a fraction of them.
$(VENV)/.dev: $(VENV)/.runtime requirements-dev.lock
	@$(PIP) install -q --no-compile --require-hashes -r requirements-dev.lock $(QUIET_PIP)
	@touch $@

setup: $(VENV)/.runtime
setup-dev: $(VENV)/.dev

system-deps:
	@bash scripts/system-deps.sh

## make run: set up, migrate, load demo data on an empty database, start console + receiver
run: $(VENV)/.runtime
	@command -v curl >/dev/null 2>&1 || bash scripts/system-deps.sh
	@bash scripts/run.sh

## make test: set up and run every test (unit, API, end-to-end, browser), on SQLite and then
## on a real PostgreSQL server the tests start themselves
## Bytecode is cached while testing even where PYTHONDONTWRITEBYTECODE is set: without it every
## test process and every receiver a test starts compiles the code and pytest rewrites the
## asserts of ~440 modules again (~10 s a process).
PYTEST := env -u PYTHONDONTWRITEBYTECODE $(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS)
test: $(VENV)/.dev system-deps
	@echo "==> Lint (ruff rules and format) and types (mypy)"
	@$(MAKE) --no-print-directory lint
	@echo "==> Tests on SQLite"
	@$(PYTEST) $(PYTEST_ARGS)
	@echo "==> Tests on PostgreSQL"
	@LESPLANNER_TEST_DB=postgres $(PYTEST) -m "not sqlite_only" $(PYTEST_ARGS)

## make bench: the performance targets of DESIGN.md, as p50/p95
bench: $(VENV)/.dev
	@$(PY) bench/run_all.py $(BENCH_ARGS)

## make mutate: mutmut over core/slots.py, core/lessons.py and core/payments/webhooks.py, each
## against its own tests (docs/TESTING.md); resumes where it stopped. Not part of `make test`.
## MUTATE_ARGS="slots" runs one module, "--results" only reports.
mutate: $(VENV)/.dev
	@$(PY) scripts/mutation.py $(MUTATE_ARGS)

## make mutate-quick: our hand-written mutants, one per money-and-time rule (a minute or two)
mutate-quick: $(VENV)/.dev
	@$(PY) scripts/mutate.py $(MUTATE_QUICK_ARGS)

migrate: $(VENV)/.runtime
	@$(PY) -m core.cli migrate

## make lint: ruff's rules, the ruff format check and mypy's types (core/, receiver/ and the
## console, as pyproject.toml sets out); `make test` starts with it. `make format` formats.
lint: $(VENV)/.dev
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(PY) -m mypy

format: $(VENV)/.dev
	@$(VENV)/bin/ruff format .

## make lock: compile requirements.in and requirements-dev.in into requirements.lock and
## requirements-dev.lock (every package pinned, with hashes); the dev tree is resolved first and the
## runtime lock takes its versions, so tests run on what `make run` installs. Packages stay where the
## locks have them unless a pin moves; LOCK_ARGS="--upgrade-package NAME" (or --upgrade) moves them on.
lock:
	@test -x $(VENV)/bin/uv || $(MAKE) --no-print-directory setup-dev
	@$(LOCK) requirements-dev.in -o requirements-dev.lock
	@$(LOCK) requirements.in -c requirements-dev.lock -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache artifacts .mutmut
