PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast install lint bench migration clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# The OpenID provider of the single sign-on tests (node's oidc-provider, from npm); the tests skip, saying why,
# when npm cannot install it.
OP_DIR := tests/identity/op
OP := $(OP_DIR)/node_modules/.installed

$(OP): $(OP_DIR)/package-lock.json
	cd $(OP_DIR) && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed \
		|| echo "npm could not install oidc-provider: the single sign-on tests will be skipped"

install: $(STAMP) $(OP)

run: $(STAMP)
	$(BIN)/credflow serve --host 127.0.0.1 --port 8080 --data-dir $${CREDFLOW_DATA_DIR:-./.credflow}

# Four test processes on two cores: while some wait on real servers, agents and browsers, the others keep the
# cores busy. Each takes whole files (their module fixtures, a server and a browser, start once), the longest
# files first (tests/conftest.py LONGEST_FIRST), so that the processes end together.
test: $(STAMP) $(OP)
	$(BIN)/pytest -q -ra -n 4 --dist loadfile --no-loadscope-reorder

# The unit tier: no HTTP, no database server; seconds.
test-fast: $(STAMP)
	$(BIN)/pytest -q tests/unit

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python bench/dispatch.py --quick
	$(BIN)/python bench/rotation.py --quick
	$(BIN)/python bench/dependencies.py --quick

# Regenerate the schema migration after a change to persistence/tables.py (development only).
migration: $(STAMP)
	$(BIN)/python -m credflow.persistence.autogen "$(MSG)"

clean:
	rm -rf $(VENV) .pytest_cache
