# kanjo — the two commands: `make run` starts kanjo, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench lint verify clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## make run: embedded PostgreSQL under var/, migrations, demo data, HTTP API on 127.0.0.1:8000
run: $(STAMP)
	$(BIN)/kanjo up --demo

## make test: the whole suite against real PostgreSQL servers the tests start themselves
test: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/lint-imports
	$(BIN)/mypy src
	$(BIN)/python -m pytest -q -p no:cacheprovider

## make bench: the benchmarks (not part of make test); JSON lines on stdout and in bench-results/
bench: $(STAMP)
	@mkdir -p bench-results
	$(BIN)/kanjo bench ledger --json | tee bench-results/ledger.jsonl
	$(BIN)/kanjo bench products --json | tee bench-results/products.jsonl
	$(BIN)/kanjo bench atm --json | tee bench-results/atm.jsonl
	$(BIN)/kanjo bench month-end --json | tee bench-results/month-end.jsonl

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/lint-imports
	$(BIN)/mypy src

verify: $(STAMP)
	$(BIN)/kanjo verify

clean:
	rm -rf $(VENV) build dist *.egg-info
