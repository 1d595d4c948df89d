# Passkey Portal. README lists what each target does; `make run` and `make test` are the two to know.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/portal
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: setup run test lint format browser gas bench bench-pipeline

setup: $(VENV)/.installed node_modules/.installed static/vendor/.installed demo/dapp/vendor/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --requirement requirements.lock
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

static/vendor/.installed: node_modules/.installed
	mkdir -p static/vendor
	cp node_modules/@simplewebauthn/browser/dist/bundle/index.umd.min.js static/vendor/simplewebauthn-browser.umd.min.js
	cp node_modules/@picocss/pico/css/pico.min.css static/vendor/pico.min.css
	cp node_modules/chart.js/dist/chart.umd.min.js static/vendor/chart.umd.min.js
	cp node_modules/ethers/dist/ethers.umd.min.js static/vendor/ethers.umd.min.js
	touch $@

# The demo dapp (a second origin, http://localhost:8001): its source (demo/dapp/src) with viem,
# wagmi, ethers and the portal's connector (connector/src), bundled by esbuild for the browser.
demo/dapp/vendor/.installed: node_modules/.installed $(wildcard demo/dapp/src/*.js connector/src/*.js)
	mkdir -p demo/dapp/vendor
	node_modules/.bin/esbuild demo/dapp/src/dapp.js --bundle --format=esm --minify --target=es2022 \
		--outfile=demo/dapp/vendor/dapp.js --log-level=warning
	touch $@

# Chromium and chromedriver from Debian's packages, for the browser tests.
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	fi

run: setup
	mkdir -p var
	$(PY) manage.py migrate --no-input
	$(VENV)/bin/honcho start --procfile Procfile.dev

test: setup browser
	$(PY) manage.py compilecontracts --check
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(PY) -m pytest

# Gas used by the passkey account against the reference SimpleAccount and an EOA (a report, not a test).
gas: setup
	$(PY) bench/gas_report.py

# Operations confirmed per second through the pipeline (own anvil, Redis and Celery workers; a report).
bench-pipeline: setup
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(PY) bench/pipeline.py

lint: setup
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
