# Scoot-py: `make smoke` runs a local cluster and the smoke test; `make test` runs the whole test suite.
VENV ?= .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)

.PHONY: install system-deps test smoke swarmtest recoverytest integrationtest hardening bench clean

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

# The hardening suite with the 30 s load of the issue (the default suite runs the load for 10 s).
hardening: system-deps install
	HARDENING_LOAD_SECONDS=30 $(BIN)/pytest -s tests/test_hardening_fuzz.py tests/test_hardening_chaos.py \
		tests/test_hardening_load.py tests/test_hardening_bundlestore.py tests/test_hardening_http.py \
		tests/test_hardening_ids.py

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build dist *.egg-info
