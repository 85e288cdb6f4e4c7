# fairshare — the two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run demo-cli test lint typecheck check clean venv bytecode

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[service,sim,dev]'
	touch $(STAMP)

venv: $(STAMP)

# The package's bytecode, compiled ahead (changed files only): where PYTHONDONTWRITEBYTECODE
# is set, Python would otherwise compile every module at every start (0.1 s per command).
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q src/fairshare

## run: set up .venv and start the service in development mode on SQLite (.fairshare/), with
##      SYNTHETIC demo data seeded once; prints the URL and the demo logins (Ctrl+C stops)
run: $(STAMP) bytecode
	FAIRSHARE_ENV=development FAIRSHARE_DATA_DIR=.fairshare FAIRSHARE_DATABASE_URL= \
		$(BIN)/fairshare demo-data
	FAIRSHARE_ENV=development FAIRSHARE_DATA_DIR=.fairshare FAIRSHARE_DATABASE_URL= \
		$(BIN)/fairshare serve

## demo-cli: the allocation demo on the command line: fair shares of 160,000 people, then one
##      allocation batch with a reason for every decision
demo-cli: $(STAMP) bytecode
	$(BIN)/fairshare demo
	$(BIN)/fairshare allocate examples/batch.json --explain 3

## test: set up .venv, lint, type-check and run the whole test suite
test: $(STAMP) bytecode
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis
