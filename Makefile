# Luster: `make run` serves the app and a worker; `make test` runs the whole suite.
# Both set everything up on a fresh machine (Python 3.11+, Node/npm) and reuse it afterwards.

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
TOOLS := .tools
PORT ?= 8000

# Reflex's own bun download cannot work offline; the npm package `bun` ships the binary.
export PATH := $(CURDIR)/$(TOOLS)/node_modules/.bin:$(BIN):$(PATH)
export REFLEX_USE_SYSTEM_BUN := 1
export PORT

.PHONY: setup run test bench frontend clean

setup: $(VENV)/.installed $(TOOLS)/.installed $(TOOLS)/.axe-installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

$(TOOLS)/.installed:
	mkdir -p $(TOOLS)
	npm install --prefix $(TOOLS) --no-audit --no-fund --loglevel=error bun@1
	touch $@

# axe-core: the accessibility engine the browser tests inject into each page (tests/test_accessibility_browser.py).
$(TOOLS)/.axe-installed:
	mkdir -p $(TOOLS)
	npm install --prefix $(TOOLS) --no-audit --no-fund --loglevel=error axe-core@4
	touch $@

# The compiled frontend; rebuilt only when the UI code changes.
.web/build/client/index.html: setup $(shell find luster_app -name '*.py') rxconfig.py
	$(BIN)/reflex export --frontend-only --no-zip --loglevel warning
	touch $@

frontend: .web/build/client/index.html

run: setup frontend
	$(BIN)/luster serve --port $(PORT)

# Two test processes (pytest-xdist); the tests that share the compiled frontend stay in one of them
# (tests/conftest.py). `make test PYTEST_ARGS=` runs them in one.
PYTEST_ARGS ?= -n 2

test: setup frontend
	$(BIN)/python tests/ensure_services.py
	$(BIN)/python -m pytest --cov --cov-report=term --cov-fail-under=80 $(PYTEST_ARGS)

bench: setup frontend
	$(BIN)/python tests/ensure_services.py
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(TOOLS) .web data
