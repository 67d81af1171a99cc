# Two commands do all the set-up on a fresh machine:
#   make run   — start StepUp on the embedded default (SQLite, development outbox)
#   make test  — install what the tests need, lint, and run the whole suite
#                on SQLite (one worker) and on a throwaway PostgreSQL (four)

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: run test lint test-sqlite test-postgres test-typescript catalogues clean

$(STAMP): pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]" -e clients/python
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/stepup serve

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests clients/python
	$(VENV)/bin/mypy
	cd clients/python && ../../$(VENV)/bin/mypy

# axe-core, from npm at the version its lock file pins: the browser tests inject it into
# every page they visit (tests/pages/axe.py). Installed once, again when the lock changes.
AXE = tests/pages/axe/node_modules/axe-core/axe.min.js

$(AXE): tests/pages/axe/package.json tests/pages/axe/package-lock.json
	cd tests/pages/axe && npm ci --no-audit --no-fund
	touch $(AXE)

test-sqlite: $(STAMP) $(AXE)
	$(PY) -m pytest -q

# The tests that start their own `stepup serve` on a data directory (the CLI, the
# guide, the Python client) never touch the suite's database: they run once, above.
test-postgres: $(STAMP)
	STEPUP_TEST_DB=postgres STEPUP_TEST_WORKERS=4 $(PY) -m pytest -q -m "not browser" \
	  --ignore=tests/cli --ignore=tests/docs --ignore=clients/python/tests

# The TypeScript client's tests start their own `stepup serve` from $(VENV).
test-typescript: $(STAMP)
	cd clients/typescript && npm ci && STEPUP_BIN=$(abspath $(VENV))/bin/stepup npm test

test: $(STAMP)
	bash scripts/install-test-deps.sh
	$(MAKE) --no-print-directory lint test-sqlite test-typescript test-postgres

# The catalogues brought in line with the sources: what the code no longer says dropped,
# what it says that a catalogue lacks appended (then translate it in locales/ru).
# tests/unit/test_catalogue_current.py fails until they agree.
catalogues: $(STAMP)
	$(PY) scripts/sync_catalogues.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
