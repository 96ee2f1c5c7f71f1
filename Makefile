# The two commands a newcomer needs: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export BLUE_BASE_URL ?= http://127.0.0.1:$(PORT)

.PHONY: install run test lint typecheck unit faults e2e fuzz bench clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/blue-provisioning db upgrade
	$(BIN)/blue-provisioning demo seed
	$(BIN)/blue-provisioning connection demo --org demo
	@# A one-time sign-in link to the admin console (docs/console.md), valid for 15 minutes.
	$(BIN)/blue-provisioning console link --org demo --email admin@demo.example
	@# A webhook worker beside the web server, so deliveries show locally (docs/webhooks.md).
	$(BIN)/blue-provisioning worker & worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/gunicorn -c deploy/gunicorn.conf.py --bind 127.0.0.1:$(PORT) 'app:create_app()'

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python tools/sizes.py

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck unit

# Every fault test, the long ones too (PostgreSQL: BLUE_TEST_DATABASE_URL; deploy/README.md).
faults: install
	BLUE_FAULTS=1 $(BIN)/python -m pytest tests/faults -p no:cacheprovider $(PYTEST_ARGS)

# The browser tests alone (part of `unit` too); tools/install-browser.sh installs Chromium.
e2e: install
	$(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

# The long fuzzing profile (README.md, Fuzzing): random cases, FUZZ_EXAMPLES of them per test.
FUZZ_EXAMPLES ?= 200
fuzz: install
	BLUE_FUZZ_PROFILE=long BLUE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/fuzz $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)
	$(BIN)/python -m bench.webhook_bench
	$(BIN)/python -m bench.import_bench
	$(BIN)/python -m bench.dry_run_bench

clean:
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache
