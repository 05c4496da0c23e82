# imageprep: `make demo` runs the main job end to end; `make test` runs every test.
# Both install what they need first (Debian packages and a .venv), so they work on a fresh machine.

VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: deps demo-deps test lint typecheck unit demo bench clean

deps:
	@scripts/install-deps.sh test

demo-deps:
	@scripts/install-deps.sh demo

lint: deps
	$(PY) -m ruff check .
	$(PY) -m ruff format --check src

typecheck: deps
	$(PY) -m mypy

test: lint typecheck
	@scripts/run-tests.sh

unit: deps
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

demo: demo-deps
	@scripts/demo.sh

bench: deps
	$(PY) bench/run.py
	$(PY) bench/run.py --remove-signatures --tools imageprep,floor
	$(PY) bench/wan.py --rtt-ms 40 --mbit 200
	$(PY) bench/wan.py --rtt-ms 100 --mbit 1000
	$(PY) bench/memory.py
	$(PY) bench/serve.py

clean:
	rm -rf $(VENV) demo-work .mypy_cache .ruff_cache
