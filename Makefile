# One entry point per job; each installs what it needs first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export CLIPSHOE_DATA_DIR ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(CLIPSHOE_DATA_DIR)/dagster_home

.PHONY: install test test-fast demo dev replay-shop bench-crawl bench-curate bench-curate-scale bench-pipeline-scale bench-train bench-evaluate bench-recrawl clean

$(BIN)/clipshoe: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/clipshoe

test: install  ## the test suite (what CI runs)
	$(BIN)/python -m pytest -q

test-fast: install  ## everything but training, evaluation with a model and end-to-end runs, on every CPU (under a minute)
	$(BIN)/python -m pytest -q -m "not slow" -n auto

demo: install  ## the main job against the replay shop (synthetic data)
	$(BIN)/clipshoe demo

dev: install  ## Dagster UI on http://127.0.0.1:3000 with run history under $(DAGSTER_HOME)
	$(BIN)/clipshoe dev

replay-shop: install
	$(BIN)/clipshoe replay-shop

bench-crawl: install
	$(BIN)/python benchmarks/crawl.py

bench-curate: install  ## image hashing and near-duplicate search against naive baselines
	$(BIN)/python benchmarks/curate.py

bench-curate-scale: install  ## curate_job per stage at growing catalog sizes, with growth exponents; dedup at 800k
	$(BIN)/python benchmarks/curate_scale.py

bench-pipeline-scale: install  ## crawl, curate, fine-tune, evaluate per stage at 500/5k/20k products, with growth exponents
	$(BIN)/python benchmarks/pipeline_scale.py

bench-train: install  ## fine-tuning samples/s per speed variant, ceiling vs real data (GPU; CPU=1 smoke run)
	$(BIN)/python benchmarks/train_throughput.py $(if $(CPU),--cpu)

bench-evaluate: install  ## chunked R@k over 80k x 80k embeddings against the full matrix on a subsample
	$(BIN)/python benchmarks/evaluate.py

bench-recrawl: install  ## a recrawl's publish and known-products step at 10k/40k/160k products of one site
	$(BIN)/python benchmarks/recrawl_publish.py

clean:
	rm -rf $(CLIPSHOE_DATA_DIR)
