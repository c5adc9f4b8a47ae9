# Scoot-py: `make smoke` runs a local cluster and the smoke test; `make test` runs the whole test suite.
VENV ?= .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)

.PHONY: install system-deps test smoke swarmtest recoverytest integrationtest bench clean

# Debian packages some tests need (the Apache Thrift compiler for interop tests, git, iproute2, chromium);
# installed only when missing and only when we are root.
system-deps:
	@./.ci/system-deps

$(VENV)/.installed: setup.cfg setup.py pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

test: system-deps install
	$(BIN)/pytest $(PYTEST_ARGS)

smoke: system-deps install
	$(BIN)/setup-cloud-scoot --strategy local.local run scootapi run_smoke_test --num_jobs 10 --timeout 1m
	@echo "make smoke: PASSED (local.local cluster: scheduler, 5 workers, 3 apiservers; smoke test of 10 jobs)"

swarmtest: system-deps install
	$(BIN)/setup-cloud-scoot --strategy local.local run scootapi run_smoke_test --num_jobs 10 --timeout 1m

recoverytest: install
	$(BIN)/recoverytest

integrationtest: install
	$(BIN)/scoot-integration

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build dist *.egg-info
