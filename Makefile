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

# Debian's wrk (load) and redis-server (baseline R), installed when missing: as root, or with
# sudo; otherwise it says what to install.
BENCH_TOOLS = command -v wrk >/dev/null && command -v redis-server >/dev/null || { \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; \
	else echo "make bench needs wrk and redis-server: apt-get install wrk redis-server (as root)" >&2; exit 1; fi; \
	$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk redis-server; }

bench: $(NPM_STAMP) ## Benchmark (7-13 min): throughput vs baselines, convergence, catch-up, size
	@$(BENCH_TOOLS)
	npm run bench

clean: ## Remove build output, test results and local data
	rm -rf dist dist-bench test-results coverage .data

-include mk/*.mk
