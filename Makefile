# One entry point per job; each installs what it needs first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export CLIPSHOE_DATA_DIR ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(CLIPSHOE_DATA_DIR)/dagster_home

.PHONY: install test demo dev replay-shop bench-crawl clean

$(BIN)/clipshoe: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/clipshoe

test: install  ## the test suite (what CI runs)
	$(BIN)/python -m pytest -q

demo: install  ## the main job against the replay shop (synthetic data)
	$(BIN)/clipshoe demo

dev: install  ## Dagster UI on http://127.0.0.1:3000 with run history under $(DAGSTER_HOME)
	$(BIN)/clipshoe dev

replay-shop: install
	$(BIN)/clipshoe replay-shop --port 8765

bench-crawl: install
	$(BIN)/python benchmarks/crawl.py

clean:
	rm -rf $(CLIPSHOE_DATA_DIR)
