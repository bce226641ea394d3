# Two targets do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
STAMP := .make/installed

.PHONY: install demo test lint typecheck proto bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m pip install -q -e '.[dev]'
	@mkdir -p .make && touch $(STAMP)

install: $(STAMP)

## Run the joint-inference example end to end on the embedded local backend.
demo: install
	$(PYTHON) -m examples.joint_inference.digits.run

## Lint, check import directions, run the test suite (starts mosquitto itself).
test: install
	@command -v mosquitto >/dev/null 2>&1 || bash scripts/install-mosquitto.sh
	$(PYTHON) -m ruff check .
	lint-imports
	$(PYTHON) -m mypy --strict $(TYPED)
	$(PYTHON) -m pytest

lint: install
	$(PYTHON) -m ruff check .
	lint-imports

## Packages held to `mypy --strict` (settings in setup.cfg; the list only grows).
# gm/controllers is strict-clean too, but imports sedna modules that are not yet (sedna/common/config.py,
# sedna/algorithms/aggregation): add it once they are.
TYPED := sedna/controlplane sedna/common/errors.py lc gm/hub gm/errors.py gm/settings.py gm/runtime gm/cluster \
	gm/workloads gm/health.py gm/schema.py
typecheck: install
	$(PYTHON) -m mypy --strict $(TYPED)

proto: install
	$(PYTHON) scripts/gen_proto.py

## Every benchmark, quick mode (one JSON line per figure; reports in bench/reports/).
bench: install
	@for b in joint_inference control_plane edge_hub mqtt federated incremental; do \
		echo "== bench.$$b"; $(PYTHON) -m bench.$$b --quick || exit 1; done

clean:
	rm -rf .make build *.egg-info .pytest_cache
