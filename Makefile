# `make demo` and `make test` work on a fresh machine. Both create a project virtual environment
# in .venv on first use (`python3 -m venv .venv`; on Debian and Ubuntu that needs the python3-venv
# package) and install the project into it with its dev extras; every target below runs .venv's
# Python, never the system's (stock Debian 12 / Ubuntu >= 23.04 refuse pip outside a venv).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install demo test coverage test-fast lint typecheck proto check-proto bench clean distclean

$(PY):
	@echo "creating the project virtual environment $(VENV) (python3 -m venv) and installing into it"
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
		echo "could not create $(VENV): on Debian/Ubuntu install the venv module first:" \
		     "sudo apt-get install python3-venv"; exit 1; }

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## Run the joint-inference example end to end on the embedded local backend.
demo: install
	$(PY) -m examples.joint_inference.digits.run

## Lint, import contracts, mypy --strict on the typed packages, then every test (starts mosquitto itself).
test: install
	@command -v mosquitto >/dev/null 2>&1 || bash scripts/install-mosquitto.sh
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m mypy
	$(PY) -m pytest $(PYTEST_ARGS)

## Every test with line coverage of sedna, gm, lc and workers in the test process (children not measured).
coverage: install
	$(PY) -m pytest --cov --cov-report=term:skip-covered $(PYTEST_ARGS)

## The in-process tier: every test not marked `processes` (under a minute).
test-fast: install
	$(PY) -m pytest -m "not processes" $(PYTEST_ARGS)

lint: install
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports

## mypy --strict over the packages listed in pyproject.toml ([tool.mypy] files).
typecheck: install
	$(PY) -m mypy

## Regenerate sedna/proto/*_pb2*.py{,i} with the pinned grpcio-tools (in its own venv, .make/protogen).
proto: install
	$(PY) scripts/gen_proto.py

## Fail if the committed generated modules differ from a fresh generation.
check-proto: install
	$(PY) scripts/gen_proto.py --check

## Every benchmark, quick mode: one JSON line per figure; reports go to bench/out/ (git-ignored).
bench: install
	@for b in joint_inference control_plane edge_hub mqtt federated incremental lifelong hostile sedna_compat storage dashboard; do \
		echo "== bench.$$b"; $(PY) -m bench.$$b --quick || exit 1; done

clean:
	rm -rf .make build *.egg-info .pytest_cache .mypy_cache .coverage bench/out

distclean: clean
	rm -rf $(VENV)
