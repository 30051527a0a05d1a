# The two commands of the README (`make up`, `make test`) work on a fresh clone: they create
# .venv and install the project with its dev extras first, once per pyproject.toml version.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: up test unit lint typecheck bench conformance clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

## Run the embedded cluster, the operator and one example job of every kind.
up: $(STAMP)
	$(BIN)/kubetrain up

## Lint, type-check and run the default test suite.
test: $(STAMP) lint typecheck
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/python tools/typecheck.py

## Micro-benchmarks (pytest-benchmark); the default test run skips them.
bench: $(STAMP)
	$(BIN)/pytest -q --benchmark-only --benchmark-columns=min,median,mean,ops,rounds

clean:
	rm -rf $(VENV) build .mypy_cache .ruff_cache

## HTTP-level API tests against a real kube-apiserver (built once into ~/.cache/kubetrain).
conformance: $(STAMP)
	tools/conformance/build.sh
	$(BIN)/pytest -q --apiserver=real --timeout=60 tests/cluster/apiserver tests/conformance
