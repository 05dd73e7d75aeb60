# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test install lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

# Install, migrate the database, load the demo customers into an empty one, and serve.
run: install
	$(BIN)/intake-bot db upgrade
	$(BIN)/intake-bot customers import --demo --if-empty
	$(BIN)/intake-bot serve

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

# The whole suite; set TEST_POSTGRES_URL to run the store tests on PostgreSQL too (CI does).
test: lint
	$(BIN)/pytest

bench: install
	$(BIN)/python bench/policy.py
	$(BIN)/python bench/email_intake.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
