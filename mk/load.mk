# The load generator (src/load, README "Load"); included by the Makefile.
# make load RATE=500 DURATION=30s [URLS=http://a,http://b] [LOAD_ARGS='--reads 0.5']
# make -s load LOAD_ARGS='--json' > summary.json: stdout carries the JSON alone.

RATE ?= 100
# 0: until Ctrl-C.
DURATION ?= 30s
# Empty: the make dev nodes (NODES of them, from :8080).
URLS ?=
LOAD_ARGS ?=

# The build first, its lines (make's and npm's) on stderr: stdout is what the recipe's program
# prints, the summary as JSON with --json. Its own command line is not echoed either (@).
BUILD_TO_STDERR = @$(MAKE) --no-print-directory build >&2

.PHONY: load

load: ## Open-loop load on a cluster: RATE/s for DURATION (default the make dev nodes; URLS=…)
	$(BUILD_TO_STDERR)
	@node dist/load/main.js --rate $(RATE) --duration $(DURATION) --nodes $(NODES)$(if $(URLS), --url $(URLS))$(if $(LOAD_ARGS), $(LOAD_ARGS))
