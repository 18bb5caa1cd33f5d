# The two commands a new user needs: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# mypy --strict covers the typed core; the Faust shells join it as they land.
TYPED := callstream

.PHONY: install run test test-reliability soak lint typecheck pytest browser bench bench-tools kafka-fetch clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "callstream needs Python 3.11+: run make with PYTHON=python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

kafka-fetch: install
	$(BIN)/callstream kafka fetch

run: install
	$(BIN)/callstream up

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy $(TYPED)

pytest: kafka-fetch browser
	$(BIN)/python -m pytest -m "not reliability and not soak" --durations=12

# The wallboard's browser test drives Debian's Chromium: installed from Debian's packages when
# missing and possible (else that test is skipped, saying why).
browser:
	@tests/install-chromium

# The fault tests (tests/reliability/, docs/reliability.md): the slow ones (marker reliability)
# and those bounded enough to run in `make test` too (marker failover).
test-reliability: kafka-fetch
	$(BIN)/python -m pytest -m "(reliability or failover) and not soak" --durations=12

# The soak (docs/reliability.md, check 7): 30 minutes at 250 webhooks/s on the three-node
# cluster (CALLSTREAM_SOAK_MINUTES, CALLSTREAM_SOAK_RATE); figures in bench/results/soak.json.
# The cluster's and the worker's data (GBs) are removed afterwards; the logs stay in SOAK_TMP.
SOAK_TMP := .cache/soak
soak: kafka-fetch
	@status=0; \
	$(BIN)/python -m pytest -m soak -s --tb=short --basetemp=$(SOAK_TMP) tests/reliability/test_soak.py || status=$$?; \
	rm -rf $(SOAK_TMP)/kafka-cluster* $(SOAK_TMP)/*/soak-data; \
	exit $$status

test: lint typecheck pytest

# Each prints a table and writes bench/results/<name>.json, and exits 1 when a target is missed;
# all four run, then the target fails if any did. The ingress runs as on a 2-core host: two
# processes (README, Performance).
bench: kafka-fetch bench-tools
	@status=0; \
	$(BIN)/python -m bench.parse || status=1; \
	$(BIN)/python -m bench.ingest --processes 2 --connections 64 || status=1; \
	$(BIN)/python -m bench.processors || status=1; \
	$(BIN)/python -m bench.processors --nodes 3 --skip-floor --skip-latency --skip-without-metrics || status=1; \
	$(BIN)/python -m bench.pipeline || status=1; \
	exit $$status

# bench.ingest's load generator, wrk: installed from Debian's packages when missing.
bench-tools:
	@bench/install-wrk

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
