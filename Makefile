# fti: two commands do all set-up on a fresh machine.
#   make demo   - create .venv if missing, install, run the churn demo end to end through Airflow
#   make test   - create .venv if missing, install with dev and production extras, build the docs
#                 site (mkdocs build --strict: a broken link or a missing page fails), run the test suite
# Installs are pinned by constraints.txt (regenerate with `make constraints` after changing deps).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
FTI_HOME ?= $(CURDIR)/.fti
export FTI_HOME
export FTI_PARAMS_FILE ?= $(CURDIR)/params.yaml
AIRFLOW_PORT ?= 8080

.PHONY: demo test airflow lint constraints clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt -e .
	touch $@

# dev and production extras: the live test (tests/live) runs the production shape (Celery
# workers, FAB auth manager, PostgreSQL drivers, S3 remote) beside the test tools.
$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev,production]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/fti demo

# The docs site first: warnings are errors (broken links and anchors, pages missing from the nav, a
# CLI reference that lacks a command); built into the gitignored build/site, offline.
# NO_MKDOCS_2_WARNING silences Material's end-of-life banner (printed, not a warning).
test: $(VENV)/.installed-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir build/site
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check fti dags plugins tests benchmarks churn_demo
	$(BIN)/mypy

# The Airflow UI with fti's DAGs and plugin on the embedded default (SQLite in FTI_HOME/airflow):
# `fti airflow` does the set-up (fti init, Airflow's database, the feature-store pool) and runs
# airflow standalone; from a project folder of your own, run `fti airflow` there.
airflow: $(VENV)/.installed
	$(BIN)/fti airflow --port $(AIRFLOW_PORT)

constraints: $(BIN)/python
	$(BIN)/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

clean:
	rm -rf $(FTI_HOME)
