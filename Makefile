# The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
PORT ?= 8000
# Every process of `make run` writes its Prometheus samples here; /metrics adds them up.
METRICS_DIR := $(CURDIR)/.metrics

.PHONY: run test lint migrate seed venv services bench bench-relay clean help

help:
	@echo "make run    - set up everything and run web, worker, relay and beat"
	@echo "make test   - set up what the tests need and run the whole suite"
	@echo "make lint   - ruff, import contracts, missing migrations"
	@echo "make bench  - orders/s, POST-to-final latency and CPU per order on an isolated platform (BENCH_QUICK=1: short)"

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

venv: $(STAMP)

services:
	@scripts/services.sh

migrate: venv services
	$(PY) manage.py create_database
	$(PY) manage.py migrate_all

seed: migrate
	$(PY) manage.py seed_demo

run: seed
	$(PY) manage.py collectstatic --noinput --verbosity 0
	@echo
	@echo "  Web:      http://127.0.0.1:$(PORT)/  (API docs: /api/v1/docs, admin: /admin/)"
	@echo
	rm -rf $(METRICS_DIR) && mkdir -p $(METRICS_DIR)
	PROMETHEUS_MULTIPROC_DIR=$(METRICS_DIR) PORT=$(PORT) $(BIN)/honcho start -f Procfile

test: venv services
	DJANGO_SETTINGS_MODULE=config.settings_test $(BIN)/pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(PY) manage.py makemigrations --check --dry-run

# The benchmark's own database (dropped and recreated each run) and Redis database.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/orders_platform_bench
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/8

bench: venv services
	DATABASE_URL=$(BENCH_DATABASE_URL) REDIS_URL=$(BENCH_REDIS_URL) DJANGO_DEBUG=0 \
		$(PY) manage.py bench $(BENCH_ARGS)

bench-relay: migrate
	$(PY) manage.py bench_relay

clean:
	rm -rf $(VENV) .staticfiles .pytest_cache $(METRICS_DIR)
