# Everything a new machine needs, from nothing. Both targets can be re-run.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A CPU build of torch, installed first and pinned: an unpinned torch pulls a multi-GB CUDA build.
TORCH ?= torch==2.13.0

.PHONY: install install-test demo test lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[test]"

# The main job: provision the default model offline, then run the demo.
demo: install
	$(BIN)/interv model pull
	$(BIN)/interv demo

# Lint, then the whole suite. pytest exits 5 when it collected no tests: that is a failure.
test: install-test lint
	@$(BIN)/python -m pytest; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; \
	exit $$status

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/interv bench forward --overwrite --json results/bench-forward.json
	$(BIN)/interv bench steer --overwrite --json results/bench-steer.json
	$(BIN)/interv bench steering --overwrite --json results/bench-steering.json
	$(BIN)/interv bench edit --overwrite --json results/bench-edit.json
	$(BIN)/interv bench sae --overwrite --json results/bench-sae.json
	$(BIN)/interv bench data --overwrite --json results/bench-data.json
