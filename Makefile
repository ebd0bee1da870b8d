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

.PHONY: run test bench mutate lint format setup setup-dev system-deps migrate clean

$(VENV)/.runtime: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PIP) install -q --upgrade pip $(QUIET_PIP)
	@$(PIP) install -q -r requirements.txt $(QUIET_PIP)
	@touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	@$(PIP) install -q -r requirements-dev.txt $(QUIET_PIP)
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
test: $(VENV)/.dev system-deps
	@echo "==> Lint (ruff)"
	@$(VENV)/bin/ruff check .
	@echo "==> Tests on SQLite"
	@$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) $(PYTEST_ARGS)
	@echo "==> Tests on PostgreSQL"
	@LESPLANNER_TEST_DB=postgres $(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) -m "not sqlite_only" $(PYTEST_ARGS)

## make bench: the performance targets of DESIGN.md, as p50/p95
bench: $(VENV)/.dev
	@$(PY) bench/run_all.py $(BENCH_ARGS)

## make mutate: break each money-and-time rule on purpose; every break must fail a test
mutate: $(VENV)/.dev
	@$(PY) scripts/mutate.py $(MUTATE_ARGS)

migrate: $(VENV)/.runtime
	@$(PY) -m core.cli migrate

lint: $(VENV)/.dev
	@$(VENV)/bin/ruff check .

format: $(VENV)/.dev
	@$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache artifacts
