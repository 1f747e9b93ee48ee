# likes: a distributed likes service. `make` alone lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

NPM_STAMP := node_modules/.package-lock.json

.PHONY: help dev test lint build clean bench

help: ## List the targets with what they do
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# npm writes this file on every install: reinstall only when the lock file is newer.
$(NPM_STAMP): package-lock.json
	npm ci
	@touch $@

build: $(NPM_STAMP) ## Compile TypeScript to dist/
	npm run build

NODES ?= 3

dev: build ## Start a local 3-node cluster on :8080-8082 (NODES=n for another size; data in .data/)
	node scripts/cluster.js --nodes $(NODES)

test: $(NPM_STAMP) ## Run every test: typecheck, build, unit, simulation and integration
	npm test

lint: $(NPM_STAMP) ## ESLint, Prettier and the import-cycle check
	npm run lint
	npm run cycles

# Debian's wrk (load) and redis-server (baseline R), installed when missing.
BENCH_TOOLS = command -v wrk >/dev/null && command -v redis-server >/dev/null || \
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk redis-server; }

bench: $(NPM_STAMP) ## Benchmark (7-13 min): throughput vs baselines, convergence, catch-up, size
	@$(BENCH_TOOLS)
	npm run bench

clean: ## Remove build output, test results and local data
	rm -rf dist dist-bench test-results coverage .data

-include mk/*.mk
