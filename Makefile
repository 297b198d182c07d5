# Set-up is part of each target: a fresh clone needs only `make e2e` or `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test e2e clean

$(BIN)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "torch==2.13.0" -e ".[train,export,deploy,dev]"
	touch $@

install: $(BIN)/.installed

test: $(BIN)/.installed
	$(BIN)/ruff check nanogfl tests benchmarks demo export
	$(BIN)/python -m pytest -q

e2e: $(BIN)/.installed
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/end_to_end.sh

clean:
	rm -rf $(VENV) runs
