# Container image and Kubernetes (minikube) targets; included by the Makefile.
# docs/kubernetes.md walks through them.

# The manifests (k8s/base/statefulset.yaml) run this image; test/deploy checks they agree.
IMAGE ?= likes:dev
MINIKUBE ?= minikube
MINIKUBE_PROFILE ?= minikube
KUBECTL ?= kubectl
K8S_NAMESPACE := likes
K8S_OVERLAY := k8s/overlays/minikube
# Written once with a random value; gitignored, never committed.
CLUSTER_SECRET_ENV := $(K8S_OVERLAY)/cluster-secret.env
# Always minikube's context: never deploy to whatever cluster kubectl points at.
KUBECTL_MINIKUBE = $(KUBECTL) --context=$(MINIKUBE_PROFILE)

.PHONY: image run stop logs render test-image

# $(call require,tool,hint): a missing tool stops the target with a message, never silently.
require = @command -v $(1) >/dev/null 2>&1 || { echo "make $@: '$(1)' not found. $(2)" >&2; exit 1; }

define require_docker_engine
	$(call require,docker,Install Docker: https://docs.docker.com/engine/install/)
	@docker info >/dev/null 2>&1 || { echo "make $@: no Docker engine answers (is the daemon running? DOCKER_HOST=$${DOCKER_HOST:-unset})" >&2; exit 1; }
endef

define require_minikube
	$(call require,$(MINIKUBE),Install minikube: https://minikube.sigs.k8s.io/docs/start/)
	$(call require,$(KUBECTL),Install kubectl: https://kubernetes.io/docs/tasks/tools/)
	@$(MINIKUBE) -p $(MINIKUBE_PROFILE) status >/dev/null 2>&1 || { echo "make $@: minikube profile '$(MINIKUBE_PROFILE)' is not running: start it with 'minikube start' (add --cni=calico to enforce NetworkPolicies)" >&2; exit 1; }
endef

$(CLUSTER_SECRET_ENV):
	@umask 077 && printf 'LIKES_CLUSTER_SECRET=%s\n' "$$(od -An -v -tx1 -N32 /dev/urandom | tr -d ' \n')" > $@
	@echo "generated a random cluster secret in $@ (gitignored)"

image: ## Build the container image (IMAGE, default likes:dev) with the local Docker engine
	$(require_docker_engine)
	docker build -t $(IMAGE) .

run: $(CLUSTER_SECRET_ENV) ## Build the image into minikube, deploy likes + Jaeger/Prometheus/Grafana, wait for the rollout
	$(require_minikube)
	@# A rebuilt image keeps its tag: pods of an existing StatefulSet must be restarted to use it.
	@existed=$$($(KUBECTL_MINIKUBE) -n $(K8S_NAMESPACE) get statefulset likes -o name 2>/dev/null); \
	set -e; \
	echo "building $(IMAGE) inside minikube"; \
	$(MINIKUBE) -p $(MINIKUBE_PROFILE) image build -t $(IMAGE) .; \
	$(KUBECTL_MINIKUBE) apply -k $(K8S_OVERLAY); \
	if [ -n "$$existed" ]; then $(KUBECTL_MINIKUBE) -n $(K8S_NAMESPACE) rollout restart statefulset/likes; fi; \
	$(KUBECTL_MINIKUBE) -n $(K8S_NAMESPACE) rollout status statefulset/likes --timeout=5m; \
	$(KUBECTL_MINIKUBE) -n $(K8S_NAMESPACE) wait --for=condition=Available deployment --all --timeout=5m
	@echo
	@echo "likes is running in namespace $(K8S_NAMESPACE). Open it with:"
	@echo "  minikube service distributed-likes-service-cluster -n $(K8S_NAMESPACE)    # then: curl <url>/  (names the pod)"
	@echo "  minikube service jaeger -n $(K8S_NAMESPACE)     # Jaeger UI: pick the 'ui' URL"
	@echo "  minikube service grafana -n $(K8S_NAMESPACE)    # Grafana, dashboards 'likes'"
	@echo "or: kubectl -n $(K8S_NAMESPACE) port-forward svc/distributed-likes-service-cluster 8080"
	@echo "Logs: make logs. Remove everything, data included: make stop."

stop: $(CLUSTER_SECRET_ENV) ## Delete likes, its data volumes and the observability stack from minikube
	$(require_minikube)
	$(KUBECTL_MINIKUBE) delete -k $(K8S_OVERLAY) --ignore-not-found --wait=true

logs: ## Follow the logs of every likes pod on minikube
	$(require_minikube)
	$(KUBECTL_MINIKUBE) -n $(K8S_NAMESPACE) logs -f -l app.kubernetes.io/name=likes --prefix --tail=100 --max-log-requests=10

render: $(CLUSTER_SECRET_ENV) ## Print the Kubernetes manifests that make run applies
	$(call require,$(KUBECTL),Install kubectl: https://kubernetes.io/docs/tasks/tools/)
	@$(KUBECTL) kustomize $(K8S_OVERLAY)

test-image: ## Build and run the image on a private throwaway Docker engine (root; docker.io, debootstrap)
	IMAGE=$(IMAGE) scripts/test-image.sh
