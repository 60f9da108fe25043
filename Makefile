# Two commands from a fresh clone: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test gen gen-check lint fmt bench-ingest clean

$(STAMP): pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e clients/python -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/audiences-server serve

test: $(STAMP) gen-check lint
	$(PY) -m pytest -q

gen: $(STAMP)
	$(PY) scripts/gen_protos.py

gen-check: $(STAMP)
	$(PY) scripts/gen_protos.py --check

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench scripts
	$(PY) -m mypy

fmt: $(STAMP)
	$(VENV)/bin/ruff check --fix src tests bench scripts

bench-ingest: $(STAMP)
	$(PY) bench/ingest.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
