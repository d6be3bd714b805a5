# Setia: the two set-up commands are `make demo` and `make test`.
SHELL := /bin/bash
# The interpreter the virtualenv is made from (override with PYTHON=...): the system's CPython
# when it is 3.11 or newer and can make a virtualenv, else the first python3 on PATH.
# Distribution builds (Debian's, the official Docker images) are compiled with profile-guided
# and link-time optimisation; a plain source build such as pyenv's default is not, and runs
# Setia's batch ingestion about 20% slower (docs/benchmarks.md).
PYTHON ?= $(shell /usr/bin/python3 -c 'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && echo /usr/bin/python3 || echo python3)
VENV := .venv
BIN := $(VENV)/bin
DEMO_DB ?= sqlite:///./demo.db
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install demo test test-sqlite test-postgres lint postgres java browser bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); python3 -m venv $(VENV); }
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# PostgreSQL server binaries for the test cluster (Debian's package), when missing.
postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; else \
	  echo "installing PostgreSQL server binaries (Debian package postgresql)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; \
	fi

# Java 17+ for PySpark (the analytics engine's Spark tests; Debian's headless JRE), when missing.
java:
	@if command -v java >/dev/null 2>&1; then :; else \
	  echo "installing Java for PySpark (Debian package openjdk-17-jre-headless)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq openjdk-17-jre-headless >/dev/null; \
	fi

# Headless Chromium and its driver for the browser tests (Debian's packages), when missing.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; else \
	  echo "installing headless Chromium for the browser tests (Debian packages chromium, chromium-driver)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

demo: install
	SETIA_DATABASE_URL=$(DEMO_DB) $(BIN)/setia demo --fresh --host $(HOST) --port $(PORT)

test: install postgres java browser lint
	$(BIN)/pytest tests --db=sqlite
	$(BIN)/pytest tests --db=postgres

test-sqlite: install java browser
	$(BIN)/pytest tests --db=sqlite

test-postgres: install postgres java browser
	$(BIN)/pytest tests --db=postgres

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: install postgres java
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/rewards.py --postgres
	$(BIN)/python bench/clv.py

clean:
	rm -rf $(VENV) demo.db demo.db-wal demo.db-shm *.egg-info src/*.egg-info
