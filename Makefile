# Migrator — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
FLASK  := $(VENV)/bin/flask --app app
TEST_PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test test-sqlite test-postgres test-clock-ahead smoke e2e lint bench install clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

## byte code for every process that starts (web workers, scheduler, runners, commands): the
## app's modules are compiled here, once, not at each start (PYTHONDONTWRITEBYTECODE is set)
install: $(VENV)/.installed
	@$(PY) -m compileall -q migrator app.py

## make run: migrate the SQLite DB in instance/, seed a demo region, start web + scheduler + sandbox
run: install
	$(FLASK) db upgrade
	$(FLASK) demo seed
	$(PY) -m migrator.demo.devrun

## make test: the whole suite on SQLite, then on PostgreSQL (mandatory in CI), then the
## production smoke test (deploy/ with gunicorn, the scheduler and nginx on PostgreSQL)
test: install
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-postgres
	$(MAKE) --no-print-directory smoke

test-sqlite: install
	$(PY) -m pytest

test-postgres: install
	@if $(PY) -c "import psycopg,sys; psycopg.connect('$(TEST_PG_URL)'.replace('+psycopg',''), connect_timeout=3).close()" 2>/dev/null; then \
		TEST_DATABASE_URL=$(TEST_PG_URL) $(PY) -m pytest -m "not browser"; \
	elif [ -n "$$CI" ]; then \
		echo "PostgreSQL at $(TEST_PG_URL) is not reachable: the PostgreSQL run is mandatory in CI"; exit 1; \
	else \
		echo "PostgreSQL at $(TEST_PG_URL) is not reachable: PostgreSQL run skipped (set TEST_PG_URL)"; \
	fi

## make test-clock-ahead: the suite (SQLite; no browser, no multi-process tests) with the clock
## a year ahead, so a date hard-coded in a test fails at once (CI runs it)
test-clock-ahead: install
	MIGRATOR_TEST_CLOCK_SHIFT_DAYS=365 $(PY) -m pytest -m "not browser and not slow"

## make smoke: the production stack of deploy/ on PostgreSQL behind nginx on port 443
## (skipped without nginx locally; never skipped in CI)
smoke: install
	@if $(PY) -c "import psycopg,sys; psycopg.connect('$(TEST_PG_URL)'.replace('+psycopg',''), connect_timeout=3).close()" 2>/dev/null; then \
		MIGRATOR_SMOKE=1 TEST_DATABASE_URL=$(TEST_PG_URL) $(PY) -m pytest -q tests/smoke; \
	elif [ -n "$$CI" ]; then \
		echo "PostgreSQL at $(TEST_PG_URL) is not reachable: the smoke test is mandatory in CI"; exit 1; \
	else \
		echo "PostgreSQL at $(TEST_PG_URL) is not reachable: smoke test skipped (set TEST_PG_URL)"; \
	fi

## make e2e: the whole region end to end against the sandbox (3,000 employees in 20 groups,
## faults and killed runners; tests/e2e/test_region.py - `make test` runs it with 300 in 8);
## on PostgreSQL when TEST_DATABASE_URL is set
E2E_EMPLOYEES ?= 3000
E2E_GROUPS ?= 20
e2e: install
	E2E_EMPLOYEES=$(E2E_EMPLOYEES) E2E_GROUPS=$(E2E_GROUPS) $(PY) -m pytest -q tests/e2e/test_region.py

lint: install
	$(VENV)/bin/ruff check .

## make bench: page latencies at region scale (see bench/README.md)
bench: install
	$(PY) bench/pages.py

clean:
	rm -rf $(VENV) instance/*.db instance/*.db-*
