# Two commands set everything up on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha1sum | cut -c1-12)
PRISM := tools/node_modules/.bin/prism
CHROMIUM := /usr/bin/chromium
POSTGRESQL := /usr/lib/postgresql

.PHONY: serve test lint typecheck unit soak sim lock tools clean bench-proxy reliability

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.8
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $@

# The local set-up lets Hubgate reach loopback so that the Twilio simulator works (D104).
serve: $(STAMP)
	HUBGATE_EGRESS_ALLOW="$${HUBGATE_EGRESS_ALLOW-127.0.0.0/8}" $(BIN)/hubgate serve

sim: $(STAMP)
	$(BIN)/hubgate sim twilio --port 8090

# Prism (npm) serves Twilio's own OpenAPI file in the contract tests.
$(PRISM): tools/package.json tools/package-lock.json
	cd tools && npm ci --no-audit --no-fund --silent
	touch $@

# Debian's Chromium drives the console's browser tests through Playwright.
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

tools: $(PRISM) $(CHROMIUM)

# Debian's PostgreSQL server: the production-topology test (tests/ops/test_topology.py) runs
# it as operators do, from its binaries (initdb, pg_ctl) on a port of its own.
$(POSTGRESQL):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) tools
	$(BIN)/pytest

test: lint typecheck unit

# Everything but the soak tests, the slow reliability ones too (pyproject's addopts leave them
# out of `make test`), with more fuzzing, then 200 clients of load for 60 s; then
# docs/reliability.md is rewritten from what was measured, every figure from a file of
# $(RELIABILITY). The command fails if anything failed, if a test was skipped although
# ../shared was there, or if a defect's regression test did not pass. Each step's exit status
# is kept so that the page is written whatever happened. The tests' temporary folders are the
# run's own: other pytest runs on the machine prune /tmp/pytest-of-<user>.
RELIABILITY := build/reliability
reliability: $(STAMP) tools $(POSTGRESQL)
	rm -rf $(RELIABILITY) && mkdir -p $(RELIABILITY)
	HUBGATE_FUZZ_EXAMPLES=$${HUBGATE_FUZZ_EXAMPLES-100} HUBGATE_RELIABILITY_RESULTS=$(RELIABILITY) \
		$(BIN)/pytest -p no:cacheprovider -m "not soak" --junitxml=$(RELIABILITY)/junit.xml \
		--basetemp=$(RELIABILITY)/tmp; \
		echo $$? > $(RELIABILITY)/pytest.status
	$(BIN)/python bench/load.py --clients 200 --seconds 60 --out $(RELIABILITY)/load.json; \
		echo $$? > $(RELIABILITY)/load.status
	$(BIN)/python bench/reliability_report.py $(RELIABILITY) docs/reliability.md

# Not a test: a few minutes of load on loopback; installs nginx and wrk from Debian if missing.
# BASELINE=<git revision> also measures Hubgate as it was then, in the same rounds.
bench-proxy: $(STAMP)
	$(BIN)/python bench/proxy/run.py $(if $(BASELINE),--baseline $(BASELINE))

# Minutes of real time (e.g. several workers polling once a minute for three minutes).
soak: $(STAMP)
	$(BIN)/pytest -m soak

lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --python $(BIN)/python -q -o requirements.lock

clean:
	rm -rf $(VENV) tools/node_modules .mypy_cache .ruff_cache .pytest_cache
