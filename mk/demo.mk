# The guided scenario (docs/demo.md): load, node3 cut off, heal, every acknowledged like read
# back; included by the Makefile. Uses the make dev nodes, or starts its own when none answers.
# make demo [RATE=100] [DEMO_ARGS='--steady 10s --cut 20s --after 10s --json']

DEMO_ARGS ?=

.PHONY: demo

demo: build ## Guided scenario: load, cut NODE off 20 s, heal; prints the numbers and lost = 0
	node dist/load/demo.js --rate $(RATE) --nodes $(NODES) --cut-node $(NODE)$(if $(DEMO_ARGS), $(DEMO_ARGS))
