# Bosun: `make run` starts the embedded stack, `make test` runs every check CI runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# uv installs the locked Python dependencies; bootstrap it into .bootstrap/ when missing.
UV ?= $(shell command -v uv 2>/dev/null || echo .bootstrap/bin/uv)
PYTHON := .venv/bin/python
export UV_LINK_MODE ?= copy
export UV_PYTHON_DOWNLOADS := never

.PHONY: help install run test lint format bench clean

help:
	@echo "make run     start Bosun (embedded stack) on http://127.0.0.1:8000"
	@echo "make test    lint, then the default, integration and browser test tiers"
	@echo "make bench   run the benchmarks (one of them: make bench NAME=http)"
	@echo "make format  format the code with ruff"

.bootstrap/bin/uv:
	python3 -m venv .bootstrap
	.bootstrap/bin/pip install --quiet --disable-pip-version-check "uv>=0.9,<1"

.venv/.synced: pyproject.toml uv.lock | $(if $(findstring .bootstrap,$(UV)),.bootstrap/bin/uv)
	$(UV) sync --frozen --quiet
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

install: .venv/.synced node_modules/.installed

run: install
	@$(PYTHON) manage.py serve embedded

# The agent runs on Python 3.9+: ruff holds its syntax to py39 (agent/pyproject.toml) and a
# test byte-compiles it with 3.9; mypy's oldest target is 3.10.
lint: install
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) manage.py makemigrations --check --dry-run
	.venv/bin/lint-imports
	$(PYTHON) -m mypy bosun/lib web/services.py web/selectors.py audit access/policy \
		access/services.py access/authorization.py access/kms.py access/mfa.py access/reencrypt.py \
		fleet/protocol fleet/services fleet/selectors.py fleet/targets.py fleet/scope.py \
		fleet/querysets.py fleet/codes.py fleet/tasks.py fleet/realtime.py fleet/timeline.py \
		fleet/tag_rules.py fleet/tags.py \
		webhooks/services.py webhooks/selectors.py webhooks/delivery.py webhooks/signing.py \
		webhooks/events.py webhooks/validation.py webhooks/sealing.py webhooks/models.py \
		webhooks/tasks.py webhooks/api \
		commands/services commands/documents commands/selectors.py commands/output.py \
		commands/rates.py commands/statuses.py commands/querysets.py commands/protocol \
		commands/api commands/views commands/forms.py commands/templatetags \
		parameters/rules.py parameters/policies.py parameters/services.py parameters/selectors.py \
		parameters/scope.py parameters/querysets.py parameters/enforcement.py parameters/events.py \
		parameters/references.py parameters/transfer.py parameters/tasks.py \
		sessions
	$(PYTHON) -m mypy --python-version 3.10 --strict agent/bosun_agent

test: lint
	$(PYTHON) -m pytest

format: install
	$(PYTHON) -m ruff check --fix .
	$(PYTHON) -m ruff format .

bench: install
	$(PYTHON) -m bench $(NAME)

clean:
	rm -rf .venv .bootstrap node_modules var/static
