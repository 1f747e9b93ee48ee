# The guided scenario (docs/demo.md): load, node3 cut off, heal, every acknowledged like read
# back; included by the Makefile. Uses the make dev nodes, or starts its own when none answers.
# make demo [RATE=100] [DEMO_ARGS='--steady 10s --cut 20s --after 10s']
# make -s demo DEMO_ARGS='--json' > demo.json: stdout carries the JSON alone.

DEMO_ARGS ?=

.PHONY: demo

# BUILD_TO_STDERR: mk/load.mk (the build, its lines on stderr).
demo: ## Guided scenario: load, cut NODE off 20 s, heal; prints the numbers and lost = 0
	$(BUILD_TO_STDERR)
	@node dist/load/demo.js --rate $(RATE) --nodes $(NODES) --cut-node $(NODE)$(if $(DEMO_ARGS), $(DEMO_ARGS))
