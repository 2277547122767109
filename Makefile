# Two commands do everything on a fresh machine with only Python 3.11+:
#   make run   - install, then materialize every asset on the demo data and print a summary
#   make test  - install, then run the whole test suite
# make dev opens the Dagster UI on the same definitions.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: run test dev install lint clean manifest

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

run: install $(DAGSTER_HOME)/dagster.yaml manifest
	$(BIN)/python -m orchestration run

test: install manifest
	$(BIN)/python -m pytest

dev: install $(DAGSTER_HOME)/dagster.yaml manifest
	$(BIN)/dagster dev -w workspace.yaml

lint: install
	$(BIN)/ruff check orchestration tests bench

clean:
	rm -rf data dbt_project/target dbt_project/logs
