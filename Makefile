# Switchboard: `make run` starts the embedded stack, `make test` runs the whole suite.
# Every target installs what it needs when it is missing; nothing relies on an earlier session.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MODEL_VENV := var/model-server/venv
MODEL_NAME ?= smollm2-135m-instruct
MODEL_DIR := var/models/$(MODEL_NAME)
UV = $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
APT_PACKAGES_TEST := postgresql redis-server chromium prometheus prometheus-alertmanager prometheus-node-exporter

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# --- installation ------------------------------------------------------------------------------
.PHONY: uv
uv:
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || { \
	  echo "installing uv (the app's package manager) with pip"; $(PYTHON) -m pip install --quiet uv; }

$(BIN)/.installed: pyproject.toml uv.lock | uv
	$(UV) sync --frozen
	@touch $@

.PHONY: install
install: $(BIN)/.installed ## Create the app virtualenv (.venv) with uv

.PHONY: model
model: ## Install vLLM for the CPU (own venv) and prepare SmolLM2-135M-Instruct
	MODEL_VENV=$(MODEL_VENV) bash model-server/cpu/setup-venv.sh
	$(MODEL_VENV)/bin/python model-server/cpu/prepare_model.py $(MODEL_DIR)

.PHONY: system-deps
system-deps: ## Install the system packages the tests use (apt-get as root; otherwise says what)
	@bash .ci/system-deps.sh $(APT_PACKAGES_TEST)

# --- the two commands --------------------------------------------------------------------------
.PHONY: run
run: install model ## Start vLLM on the CPU and the app on SQLite; prints the URL (Ctrl-C stops)
	$(BIN)/switchboard stack

.PHONY: test
test: install model system-deps ## Run the whole suite with coverage (real vLLM, browser, databases)
	$(BIN)/pytest --cov --cov-report=term --cov-report=xml:test-artifacts/coverage.xml $(PYTEST_ARGS)

.PHONY: lint
lint: install ## ruff check, ruff format --check, mypy --strict, bandit, detect-secrets
	$(BIN)/ruff check src tests loadtests model-server grafana
	$(BIN)/ruff format --check src tests loadtests model-server grafana
	$(BIN)/mypy --strict src
	$(BIN)/bandit -q -r src -c pyproject.toml
	git ls-files -z | xargs -0 $(BIN)/detect-secrets-hook --baseline .secrets.baseline

# A new fake secret (a test password) fails `make lint`: mark its line `# pragma: allowlist secret`
# or add it here, then review the new entries (detect-secrets audit .secrets.baseline). The
# baseline keeps no line numbers, so that moving a line does not change it.
.PHONY: secrets-baseline
secrets-baseline: install ## Rescan the tracked files into .secrets.baseline (review the diff)
	$(BIN)/detect-secrets scan --baseline .secrets.baseline
	$(BIN)/python -c 'import json, pathlib; path = pathlib.Path(".secrets.baseline"); \
	  baseline = json.loads(path.read_text()); \
	  [found.pop("line_number", None) for each in baseline["results"].values() for found in each]; \
	  path.write_text(json.dumps(baseline, indent=2) + "\n")'

.PHONY: format
format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix src tests loadtests model-server grafana
	$(BIN)/ruff format src tests loadtests model-server grafana

.PHONY: bench
bench: install ## Benchmarks: gateway overhead against an instant fake upstream (wrk)
	@bash .ci/system-deps.sh wrk
	$(BIN)/python loadtests/bench_gateway.py

.PHONY: unit
unit: install ## Only the fast tests (no model server, no browser)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

.PHONY: serve
serve: install ## Run only the app (model server elsewhere: SWITCHBOARD_UPSTREAM_URLS)
	$(BIN)/switchboard serve

.PHONY: clean
clean: ## Remove caches and test artifacts (keeps virtualenvs and the model)
	rm -rf .pytest_cache .mypy_cache .ruff_cache test-artifacts .coverage coverage.xml

.PHONY: distclean
distclean: clean ## Also remove both virtualenvs, the prepared model and the local database
	rm -rf $(VENV) var
