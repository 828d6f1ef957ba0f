# Two commands do all set-up: `make run` and `make test`. Everything lives in .venv and instance/.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
export TZ := UTC
# Web and worker processes count into one directory (prometheus_client multiprocess mode); `make run`
# empties it before they start (`flask metrics clear` refuses while processes still use it).
METRICS_DIR = $(or $(PROMETHEUS_MULTIPROC_DIR),$(or $(INSTANCE_DIR),$(CURDIR)/instance)/prometheus)
# Development backups are encrypted with a random passphrase kept here (made once, mode 600; the
# config reads it outside production unless BACKUP_PASSPHRASE(_FILE) is set). Production sets its own.
DEV_PASSPHRASE = $(or $(INSTANCE_DIR),$(CURDIR)/instance)/backup.passphrase

.PHONY: run test test-browser lint stop bench bench-export bench-backup bench-seed bench-explain bench-load clean-instance

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The embedded PostgreSQL and Redis (requirements-embedded.txt) serve `make run`, `make stop` and
# the tests only; production installs requirements.txt alone.
$(VENV)/.run-installed: requirements.txt requirements-embedded.txt | $(VENV)/bin/python
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-embedded.txt
	touch $@

# requirements-dev.txt includes both files above, so it also stands for .run-installed.
$(VENV)/.dev-installed: requirements.txt requirements-embedded.txt requirements-dev.txt | $(VENV)/bin/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.run-installed

## run: migrate, create demo data on first start, then web + worker + scheduler (Ctrl-C stops them)
run: $(VENV)/.run-installed
	$(FLASK) db upgrade
	$(FLASK) demo-data --if-empty
	$(FLASK) welcome
	PROMETHEUS_MULTIPROC_DIR="$(METRICS_DIR)" $(FLASK) metrics clear
	@[ -n "$$BACKUP_PASSPHRASE$$BACKUP_PASSPHRASE_FILE" ] || [ -s "$(DEV_PASSPHRASE)" ] || \
	  (umask 077 && mkdir -p "$(dir $(DEV_PASSPHRASE))" && \
	   $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(32))" > "$(DEV_PASSPHRASE)")
	PROMETHEUS_MULTIPROC_DIR="$(METRICS_DIR)" PATH="$(BIN):$$PATH" $(BIN)/honcho start -f Procfile

# pytest-xdist workers for `make test`, each on a database and a Redis database of its own (see README,
# Tests); 3 measured quickest on this 2-core machine (much of the time is waiting on PostgreSQL, subprocesses
# and the browser). TEST_WORKERS=0 (or PYTEST_ARGS="-n 0") runs serially.
# --dist loadfile keeps each file on one worker, so module fixtures (backup drill, roles) are built once.
TEST_WORKERS ?= 3

## test: the whole suite on real PostgreSQL and Redis (embedded, or TEST_DATABASE_URL / TEST_REDIS_URL), in parallel
test: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .

## stop: stop the embedded PostgreSQL and Redis under instance/
stop: $(VENV)/.run-installed
	$(BIN)/python -m portal.embedded stop

## bench: the SLA breach-check benchmark (1,000,000 requests; see bench/RESULTS.md)
bench: $(VENV)/.dev-installed
	$(BIN)/python bench/sla_check.py

## bench-export: the CSV export benchmark (1,000,000 requests beside PostgreSQL's COPY; see bench/RESULTS.md)
bench-export: $(VENV)/.dev-installed
	$(BIN)/python bench/export.py

## bench-backup: the encrypted backup benchmark (1,000,000 requests beside pg_dump | gzip; see bench/RESULTS.md)
bench-backup: $(VENV)/.dev-installed
	$(BIN)/python bench/backup.py

## bench-seed: empty and seed the bench database (REQUESTS=1000000; BENCH_DATABASE_URL or embedded portal_bench)
bench-seed: $(VENV)/.dev-installed
	$(BIN)/python bench/seed.py --requests $(or $(REQUESTS),1000000)

## bench-explain: EXPLAIN (ANALYZE, BUFFERS) of the slow pages' SQL at 100,000 and 1,000,000 requests (see bench/RESULTS.md)
bench-explain: $(VENV)/.dev-installed
	$(BIN)/python bench/explain.py --requests-sizes 100000,1000000

## bench-load: the portal under gunicorn with locust, 20 users then 1, 60 s each (BENCH_DATABASE_URL or embedded portal_bench; see bench/README.md)
bench-load: $(VENV)/.dev-installed
	$(BIN)/python bench/load.py $(LOAD_ARGS)
