# Two commands on a fresh machine: `make demo` and `make test`. Both create or reuse .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_OUT ?= demo-out

.PHONY: install demo demo-quick test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[train,dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/gen-eval demo --out $(DEMO_OUT)

demo-quick: install
	$(BIN)/gen-eval demo --quick --out $(DEMO_OUT)-quick

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/bench_evaluator.py
	$(BIN)/python benchmarks/bench_fid_features.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
