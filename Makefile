# Two targets do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
STAMP := .make/installed

.PHONY: install demo test lint proto bench clean

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
	$(PYTHON) -m pytest

lint: install
	$(PYTHON) -m ruff check .
	lint-imports

proto: install
	$(PYTHON) scripts/gen_proto.py

bench: install
	$(PYTHON) -m bench.joint_inference --quick

clean:
	rm -rf .make build *.egg-info .pytest_cache
