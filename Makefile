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
APT_PACKAGES_TEST := postgresql redis-server chromium prometheus prometheus-alertmanager prometheus-node-exporter caddy

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# --- installation ------------------------------------------------------------------------------
.PHONY: uv
uv: ## Install uv (the app's package manager) with pip when it is missing
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

.PHONY: node
node: ## Install Node.js and npm when missing (compatcanary in tests/conformance)
	@command -v npm >/dev/null 2>&1 || bash .ci/system-deps.sh nodejs npm

.PHONY: system-deps
system-deps: ## Install the system packages the tests use (apt-get as root; otherwise says what)
	@bash .ci/system-deps.sh $(APT_PACKAGES_TEST)

# A run fails when a suite it expects collected no test or skipped every one (tests/support/
# suites.py); `TEST_EXPECT_SUITES= make ...` turns that off (say, with a file in PYTEST_ARGS).
expect = TEST_EXPECT_SUITES="$${TEST_EXPECT_SUITES-$(1)}"

# --- the two commands --------------------------------------------------------------------------
.PHONY: run
run: install model ## Start vLLM on the CPU and the app on SQLite; prints the URL (Ctrl-C stops)
	$(BIN)/switchboard stack

.PHONY: test
test: install model system-deps node ## Run the whole suite with coverage (real vLLM, browser, databases)
	$(call expect,tests/unit tests/integration tests/conformance tests/e2e) $(BIN)/pytest --cov --cov-report=term --cov-report=xml:test-artifacts/coverage.xml \
	  --junitxml=test-artifacts/junit.xml $(PYTEST_ARGS)

.PHONY: lint
lint: install ## ruff, format, mypy --strict, import layers, bandit, detect-secrets, docs' references
	$(BIN)/ruff check src tests loadtests model-server grafana tools
	$(BIN)/ruff format --check src tests loadtests model-server grafana tools
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/bandit -q -r src -c pyproject.toml
	git ls-files -z | xargs -0 $(BIN)/detect-secrets-hook --baseline .secrets.baseline
	$(BIN)/python tools/check_docs.py
	$(MAKE) --no-print-directory lint-workflows
	$(MAKE) --no-print-directory k8s-validate

.PHONY: lint-workflows
lint-workflows: install ## actionlint and zizmor over .github (both run offline from their wheels)
	$(BIN)/actionlint -shellcheck "$(abspath $(BIN))/shellcheck" .github/workflows/*.yml
	$(BIN)/zizmor --offline --min-severity low .github/workflows

# Kubernetes (infra/k8s, docs/scaling.md): rendered with kubectl kustomize and checked offline,
# the built-in kinds by kubernetes-validate, the custom resources by the CRD validators of
# infra/k8s/validate (Node.js; npm ci on first use), every object by tools/k8s_policy.py.
.PHONY: k8s-render k8s-validate router-requirements
k8s-render: install ## Render every overlay of infra/k8s into test-artifacts/k8s/NAME.yaml
	$(BIN)/python tools/k8s_manifests.py --render-only

k8s-validate: install ## Render every infra/k8s overlay and validate it offline (schemas, CRDs, policy)
	@command -v npm >/dev/null 2>&1 || bash .ci/system-deps.sh nodejs npm
	$(BIN)/python tools/k8s_manifests.py

VLLM_ROUTER_VERSION ?= 0.1.17
router-requirements: uv ## Lock the router image's requirements with hashes (VLLM_ROUTER_VERSION)
	echo "vllm-router==$(VLLM_ROUTER_VERSION)" | $(UV) pip compile - --quiet --generate-hashes \
	  --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	  --custom-compile-command "make router-requirements" -o infra/docker/router-requirements.txt

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
	$(BIN)/ruff check --fix src tests loadtests model-server grafana tools
	$(BIN)/ruff format src tests loadtests model-server grafana tools

.PHONY: bench bench-gateway
bench: bench-gateway bench-model ## Both benchmarks (see docs/load-testing.md)

bench-gateway: install ## Gateway overhead vs an instant upstream and a bare proxy (wrk; reports/)
	@bash .ci/system-deps.sh wrk redis-server
	$(BIN)/python -m loadtests.bench_gateway

.PHONY: loadtest loadtest-sweep load-report
USERS ?= 8
SPAWN ?= 2
DURATION ?= 60s
TARGET ?=
loadtest: install model ## Locust, headless: USERS= SPAWN= DURATION= [TARGET=]; reports/ (CSV, HTML, PNG)
	USERS=$(USERS) SPAWN=$(SPAWN) DURATION=$(DURATION) TARGET=$(TARGET) $(BIN)/python -m loadtests.run_loadtest

loadtest-sweep: install model ## Chat users at LEVELS=1,2,4,8,16,32 against the TTFT SLO (reports/)
	DURATION=$(DURATION) $(BIN)/python -m loadtests.run_loadtest sweep

load-report: install ## docs/load-testing.md from the reports/ of the benchmarks and load tests
	$(BIN)/python -m loadtests.report

.PHONY: quality-report
quality-report: install ## docs/quality-report.md: tests, coverage, lint, scans, contract, benchmarks, images
	$(BIN)/python tools/quality_report.py

.PHONY: bench-model
bench-model: install model ## vLLM CPU directly and through the gateway at 1/8/32 streams (reports/)
	$(BIN)/python -m loadtests.bench_model

.PHONY: unit
unit: install ## Only the fast tests (no model server, no browser, no database or Redis server)
	$(call expect,tests/unit) $(BIN)/pytest tests/unit $(PYTEST_ARGS)

# CI runs the suite in parts, one job each; coverage data goes to test-artifacts/ and is
# combined (and gated) by `make coverage-report`. A part alone covers less than the gate: it is
# not gated (--cov-fail-under=0), the combination is.
.PHONY: test-unit test-integration test-conformance test-e2e coverage-report audit
test-unit: install system-deps ## The unit tests, with coverage data (CI's unit job)
	$(call expect,tests/unit) COVERAGE_FILE=test-artifacts/.coverage.unit $(BIN)/pytest tests/unit --cov --cov-report= --cov-fail-under=0 $(PYTEST_ARGS)

test-integration: install model system-deps ## Integration and contract tests on the real vLLM, PostgreSQL, Redis
	$(call expect,tests/integration) COVERAGE_FILE=test-artifacts/.coverage.integration $(BIN)/pytest tests/integration --cov --cov-report= --cov-fail-under=0 $(PYTEST_ARGS)

# The public conformance suites (issue 25), vLLM directly beside the gateway; `make test` runs
# them too, on its one vLLM. The tools come from PyPI and npm at test time (var/conformance).
test-conformance: install model node ## openai-python's API tests, trustedrouter, compatcanary: vLLM vs gateway (reports/)
	$(call expect,tests/conformance) COVERAGE_FILE=test-artifacts/.coverage.conformance $(BIN)/pytest tests/conformance --cov --cov-report= --cov-fail-under=0 $(PYTEST_ARGS)

test-e2e: install model system-deps ## Browser tests in Chromium against the real stack
	$(call expect,tests/e2e) COVERAGE_FILE=test-artifacts/.coverage.e2e $(BIN)/pytest tests/e2e --cov --cov-report= --cov-fail-under=0 $(PYTEST_ARGS)

coverage-report: install ## Combine the parts' coverage, print it as Markdown, fail under the gate
	cd test-artifacts && ../$(BIN)/coverage combine --keep --data-file=.coverage .coverage.*
	$(BIN)/coverage report --data-file=test-artifacts/.coverage --format=markdown

audit: install ## pip-audit over the locked runtime dependencies (PyPI's advisory data)
	$(UV) export --frozen --no-dev --extra redis --no-emit-project --format requirements-txt \
	  > test-artifacts/requirements-audit.txt
	$(BIN)/pip-audit --strict --require-hashes -r test-artifacts/requirements-audit.txt

.PHONY: serve
serve: install ## Run only the app (model server elsewhere: SWITCHBOARD_UPSTREAM_URLS)
	$(BIN)/switchboard serve

# --- production deployment: images, compose, backups ----------------------------------------
.PHONY: test-images test-scale
test-images: install ## Build the images with podman, boot docker-compose.prod.yml on them, test it
	bash .ci/test-images.sh

test-scale: install ## 2 gateways + vllm-router + 2 vLLM replicas on podman: spread, failover, limits
	bash .ci/test-scale.sh

.PHONY: run-prod-local
run-prod-local: install model system-deps ## Production topology as loopback processes (no engine)
	$(BIN)/python -m tests.support.prod_local $(PROD_LOCAL_ARGS)

# Compose deployment by default; BACKUP_DATABASE_URL=postgresql://... for any other server.
BACKUP ?=
.PHONY: backup
backup: ## Back up PostgreSQL with pg_dump into BACKUP (default backups/switchboard-DATE.dump)
	bash deploy/backup.sh $(BACKUP)

.PHONY: restore
restore: ## Restore BACKUP=file with pg_restore (drops and recreates the tables, one transaction)
	@test -n "$(BACKUP)" || { echo "make restore BACKUP=backups/FILE.dump" >&2; exit 1; }
	bash deploy/restore.sh $(BACKUP)

# --- delivery: deploy a tag, smoke-test it, roll back by itself ------------------------------
.PHONY: deploy deploy-remote test-deploy
TAG ?=
deploy: ## Deploy TAG here with docker-compose.prod.yml (deploy/compose.env), rolling back on failure
	@test -n "$(TAG)" || { echo "make deploy TAG=<image tag>" >&2; exit 1; }
	bash deploy/deploy.sh $(TAG)

deploy-remote: ## (CI) ship the deployment to DEV_HOST over SSH and run deploy/deploy.sh TAG there
	bash deploy/remote.sh

test-deploy: install ## Deploy, smoke test and automatic rollback, for real: local registry + podman
	bash .ci/test-deploy.sh

.PHONY: clean
clean: ## Remove caches and test artifacts (keeps virtualenvs and the model)
	rm -rf .pytest_cache .mypy_cache .ruff_cache test-artifacts .coverage coverage.xml

.PHONY: distclean
distclean: clean ## Also remove both virtualenvs, the prepared model and the local database
	rm -rf $(VENV) var
