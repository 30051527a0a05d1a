# The two commands of the README (`make up`, `make test`) work on a fresh clone: they create
# .venv and install the project with its dev extras first, once per pyproject.toml version.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
# pytest-xdist workers: the suites mostly wait (timers, simulated pods, servers), so 3 workers
# on CI's 2 cores took the default suite from 12.4 to 8.0 minutes and the conformance tier to
# 4.4; PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 3

.PHONY: up test unit lint typecheck bench conformance conformance-build clean dashboard

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
	$(BIN)/pytest -q -n $(PYTEST_WORKERS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/python tools/typecheck.py

## Micro-benchmarks (pytest-benchmark); the default test run skips them.
bench: $(STAMP)
	$(BIN)/pytest -q --benchmark-only --benchmark-columns=min,median,mean,ops,rounds

## Rebuild the dashboard's page (dashboard/ui -> the committed dashboard/static); needs Node.js.
dashboard:
	tools/dashboard/build.sh

clean:
	rm -rf $(VENV) build .mypy_cache .ruff_cache

## Build the real control plane (kube-apiserver, kube-controller-manager, etcd), the reference
## operator, Kueue and JobSet from the Go module proxy, once: cached in ~/.cache/kubetrain/conformance; and the
## install's tools (helm, kustomize, promtool): cached in ~/.cache/kubetrain/tools.
conformance-build:
	tools/conformance/build.sh
	tools/conformance/build_reference_operator.sh
	tools/conformance/build_kueue.sh
	tools/conformance/build_jobset.sh
	tools/conformance/build_trainer.sh
	tools/deploy/build_tools.sh

## The conformance tier: the HTTP-level API tests and the per-kind job tests against a real
## control plane with simulated nodes (tests marked http_api; see tests/conformance).
conformance: $(STAMP) conformance-build
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --apiserver=real --timeout=120 tests/cluster/apiserver tests/conformance tests/e2e \
		tests/bench/test_real_cluster_service_accounts.py tests/dashboard/test_dash_http.py \
		tests/dashboard/test_dash_trainjob.py
