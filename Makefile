# Sparkify pipelines. `make run` loads a window through Airflow's scheduler on a local stack;
# `make test` runs the tests. Both install what they need into .venv from the lock file.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
UV_VERSION := 0.13.8
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)/tools

.PHONY: install run up down clean test test-fast lint bench lock tables analysis airflow aws-check

install: $(STAMP)

$(STAMP): requirements-dev.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || { \
	  echo "error: Python 3.11 is needed; $(PYTHON) is $$($(PYTHON) --version 2>/dev/null || echo "not found")." \
	       "Install 3.11 and run make with PYTHON=python3.11" >&2; exit 1; }
	@test ! -x $(PY) || $(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { \
	  echo "error: $(VENV) was made with $$($(PY) --version 2>&1), not Python 3.11: remove $(VENV) and run make again" >&2; \
	  exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(VENV)/bin/uv pip sync --quiet --python $(PY) requirements-dev.lock
	@touch $(STAMP)

# make run [START=2018-11-05] [END=2018-11-06] [SOURCE=../shared/data/sparkify] [WAREHOUSE_URL=postgresql://…]
run: install
	$(PY) -m sparkify_local run

up: install
	$(PY) -m sparkify_local up

down: install
	$(PY) -m sparkify_local down

# make airflow ARGS="dags list": any Airflow CLI command against the stack `make up` runs.
airflow: install
	@$(PY) -m sparkify_local airflow $(ARGS)

# Stops what `make up` left running, then removes STATE_DIR (from the environment or .env; default .state).
clean:
	@if test -x $(PY); then $(PY) -m sparkify_local clean; else rm -rf "$${STATE_DIR:-.state}"; fi

# Tests run on TEST_WORKERS pytest-xdist workers, which share one PostgreSQL and one moto server
# started by pytest's controller; a module's tests stay on one worker (tests/conftest.py).
TEST_WORKERS ?= 3

test: install
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# The inner loop: no scheduler, no runner processes, no 14,896-song staging. Two workers: its
# tests are short, so each more worker's server start-up costs more than it saves on 2 cores.
FAST_WORKERS ?= 2

test-fast: install
	$(PY) -m pytest -n $(FAST_WORKERS) --dist loadgroup -m "not slow" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) -m sparkify_bench $(BENCH_ARGS)

analysis: install
	$(PY) -m sparkify.analysis

# The acceptance run on a real AWS account (docs/aws.md): states what it creates and costs, asks
# (or YES=1), sets up, loads a day, compares every star table, tears down. [WAREHOUSE_KIND=serverless]
# [DAY=2018-11-04] [SONG_PREFIX=song_data/A/A] [OPEN_PORT=1]
aws-check: install
	$(PY) -m sparkify_aws_check

# Re-resolve the pins after editing pyproject.toml.
lock:
	@test -x $(VENV)/bin/uv || { $(PYTHON) -m venv $(VENV) && $(PY) -m pip install --quiet "uv==$(UV_VERSION)"; }
	$(VENV)/bin/uv pip compile pyproject.toml --quiet --python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements.lock
	$(VENV)/bin/uv pip compile pyproject.toml --quiet --extra celery --constraint requirements.lock --python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements-celery.lock
	$(VENV)/bin/uv pip compile pyproject.toml --quiet --extra celery --extra local --extra dev --constraint requirements-celery.lock --python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements-dev.lock
