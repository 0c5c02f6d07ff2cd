# The two front-door commands: `make demo` and `make test`. Each installs what it needs
# into .venv first (once; again when a requirements file changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LANGCHAIN := $(wildcard integrations/langchain/pyproject.toml)
PACKAGES := -e ".[postgres]" $(if $(LANGCHAIN),-e "integrations/langchain[agents]")

.PHONY: demo test lint install

$(STAMP): pyproject.toml requirements-dev.txt $(LANGCHAIN)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(PACKAGES) -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python samples/mashup_agent.py
	$(BIN)/lit-memory show mashup-demo

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
