# The two commands a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAMPLE := issues/2021-06-01-chengdu-flemish-brabant

.PHONY: demo test lint-fix install install-test browser postgresql validator axe caniemail bench docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test validator axe browser postgresql

# The official MJML validator (npm `mjml`) and axe-core (the theme's and pages' WCAG checks inject it in
# Chromium), pinned, installed into node_modules/ here in one npm call: a second `npm install --no-save`
# would remove what the first one installed.
NPM_TOOLS := mjml@4.15.3 axe-core@4.10.3
validator axe:
	@if command -v npm >/dev/null 2>&1; then \
	  { [ -x node_modules/.bin/mjml ] && [ -f node_modules/axe-core/axe.min.js ]; } \
	    || npm install --silent --no-audit --no-fund --no-save $(NPM_TOOLS) >/dev/null; \
	else echo "npm not found: the MJML validator and accessibility tests will fail (install Node.js, or BROADSHEET_TEST_SKIP_MISSING=1)"; fi

# Refresh lint's CSS support table (src/broadsheet/core/lint/caniemail_css.json) from a caniemail release.
caniemail: install
	npm install --silent --no-audit --no-fund --no-save $(NPM_TOOLS) caniemail@2.0.2 >/dev/null
	$(BIN)/python scripts/caniemail_subset.py node_modules/caniemail/data/caniemail.json

# Headless Chromium and its driver from Debian, for the preview's browser tests.
browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	      || echo "could not install chromium: the browser tests will fail (or BROADSHEET_TEST_SKIP_MISSING=1)"; \
	  else echo "chromium/chromedriver missing (apt-get install chromium chromium-driver), or BROADSHEET_TEST_SKIP_MISSING=1 to skip the browser tests"; fi; \
	fi
	@# a CJK font, so that the stress issue's Chinese is laid out as on a reader's phone, not as empty boxes
	@if [ "$$(id -u)" = 0 ] && command -v fc-list >/dev/null 2>&1 && [ -z "$$(fc-list :lang=zh)" ]; then \
	  { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null 2>&1 \
	    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null 2>&1; } \
	    || echo "could not install fonts-wqy-microhei: the stress issue's Chinese shows as boxes in the browser tests"; }; \
	fi

# PostgreSQL from Debian, for the store's tests on its second engine: the suite starts its own server from
# /usr/lib/postgresql/<version>/bin (tests/support/postgres.py), never the cluster the package may set up.
postgresql:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null 2>&1 \
	      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }; } \
	      || echo "could not install postgresql: the PostgreSQL store tests will fail (or BROADSHEET_TEST_SKIP_MISSING=1)"; \
	  else echo "PostgreSQL missing (apt-get install postgresql), or BROADSHEET_TEST_SKIP_MISSING=1 to skip its tests"; fi; \
	fi

# The demo signs unsubscribe links with a throw-away secret; real sends export BROADSHEET_SECRET.
demo: install
	$(BIN)/broadsheet build $(SAMPLE)
	BROADSHEET_SECRET=$${BROADSHEET_SECRET:-demo-only-not-a-real-secret} \
	  $(BIN)/broadsheet send $(SAMPLE) --list subscribers.example.csv --transport outbox --yes
	@echo "The messages are in outbox/$(notdir $(SAMPLE))/ and the journal in .broadsheet/state.db (broadsheet status $(SAMPLE))."

# Lint, format check, strict types and the import contract first (configured in pyproject.toml), the docs
# site built strictly (a broken link or nav entry fails), then the suite (three workers on two cores: many
# tests wait on a browser, a server or a child process); any failure fails.
test: install-test
	$(BIN)/ruff check
	$(BIN)/ruff format --check
	$(BIN)/mypy
	$(BIN)/lint-imports
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir build/site
	$(BIN)/python -m pytest -n 3 -q

# The fixes ruff can make by itself, and the formatter (run before committing).
lint-fix: install-test
	$(BIN)/ruff check --fix
	$(BIN)/ruff format

# The docs site, live on http://127.0.0.1:8000 while you edit docs/ (make test builds it strictly).
docs: install-test
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

bench: install
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/build.py

clean:
	rm -rf dist site outbox .broadsheet build *.egg-info src/*.egg-info
