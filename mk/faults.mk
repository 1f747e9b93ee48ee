# Fault injection on the make dev cluster, whose nodes run with LIKES_FAULTS=enabled (README,
# "Fault injection"); included by the Makefile.
# make fault-partition NODE=node3 [FOR=20s]; make fault-clear

NODE ?= node3
# Empty: until make fault-clear.
FOR ?=
COMMA := ,

.PHONY: fault-partition fault-clear

fault-partition: ## Cut NODE of make dev (node3) off from every peer, both ways; FOR=20s heals it by itself
	@case "$(NODE)" in node[1-9]|node[1-9][0-9]) ;; *) echo "NODE must be node1, node2, ... (got $(NODE))" >&2; exit 2;; esac
	@curl -sS --fail-with-body -X PUT -H 'content-type: application/json' \
		-d '{"cut":"both"$(if $(FOR),$(COMMA)"for":"$(FOR)")}' \
		"http://127.0.0.1:$$((9463 + $(patsubst node%,%,$(NODE))))/faults/%2A"; echo

fault-clear: ## Clear every injected fault on the NODES nodes of make dev
	@for i in $$(seq 1 $(NODES)); do \
		curl -sS --fail-with-body -X DELETE "http://127.0.0.1:$$((9463 + i))/faults" || exit 1; echo; done
