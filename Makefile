# The two commands of the README, on a fresh machine:
#   make plan    offline plan of the default stack (no Pulumi CLI, cloud or credentials)
#   make test    the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STACK  ?= ovh-gra11
STAMP  := $(VENV)/.installed

.PHONY: plan test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

plan: $(STAMP)
	$(BIN)/infratech plan $(STACK)

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/plan_scaling.py

clean:
	rm -rf build .pytest_cache
