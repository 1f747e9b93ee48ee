# The load generator (src/load, README "Load"); included by the Makefile.
# make load RATE=500 DURATION=30s [URLS=http://a,http://b] [LOAD_ARGS='--reads 0.5 --json']

RATE ?= 100
# 0: until Ctrl-C.
DURATION ?= 30s
# Empty: the make dev nodes (NODES of them, from :8080).
URLS ?=
LOAD_ARGS ?=

.PHONY: load

load: build ## Open-loop load on a cluster: RATE/s for DURATION (default the make dev nodes; URLS=…)
	node dist/load/main.js --rate $(RATE) --duration $(DURATION) --nodes $(NODES)$(if $(URLS), --url $(URLS))$(if $(LOAD_ARGS), $(LOAD_ARGS))
