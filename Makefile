# Two commands do everything on a fresh machine with only Python 3.11+:
#   make run   - install, then materialize every asset on the demo data and print a summary
#   make test  - install (and, as root on Debian, the browser the dashboard tests drive), then run the whole test suite
# make dev opens the Dagster UI on the same definitions; make dashboard serves the dashboard on 127.0.0.1:8050.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: run test dev dashboard browser install lint clean manifest bytecode

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: Makefile
	mkdir -p $(DAGSTER_HOME)
	printf 'telemetry:\n  enabled: false\nconcurrency:\n  pools:\n    default_limit: 1\nrun_retries:\n  enabled: true\n  max_retries: 0\n' > $(DAGSTER_HOME)/dagster.yaml
	printf 'event_log_storage:\n  module: orchestration.event_storage\n  class: BatchingSqliteEventLogStorage\n  config:\n    base_dir: $(DAGSTER_HOME)/history/runs\n' >> $(DAGSTER_HOME)/dagster.yaml

manifest: install
	cd dbt_project && ../$(BIN)/dbt parse --profiles-dir . --quiet

# our modules' bytecode, written ahead: where PYTHONDONTWRITEBYTECODE is set (this sandbox, many
# container images) Python would otherwise compile them again in every run's process (~0.3 s)
bytecode: install
	$(BIN)/python -m compileall -q orchestration

run: install $(DAGSTER_HOME)/dagster.yaml manifest bytecode
	$(BIN)/python -m orchestration run

# Debian's chromium for the browser tests (Playwright drives it; its own browser download cannot work
# offline). Installed when running as root with apt-get; otherwise one line says the tests will skip.
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium for the browser tests ..."; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || echo "browser tests: Debian's chromium could not be installed; they will be skipped"; \
	else echo "browser tests: /usr/bin/chromium is missing and this is not root with apt-get; they will be skipped"; fi

test: install manifest browser bytecode
	$(BIN)/python -m pytest

dashboard: install
	$(BIN)/python -m orchestration.dashboard

dev: install $(DAGSTER_HOME)/dagster.yaml manifest bytecode
	$(BIN)/dagster dev -w workspace.yaml

lint: install
	$(BIN)/ruff check orchestration tests bench

clean:
	rm -rf data dbt_project/target dbt_project/logs test-artifacts
