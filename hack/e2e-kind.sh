#!/usr/bin/env bash
# Run the e2e suite against a kind cluster with Bananas installed by its chart.
#
# For developers with Docker, kind, kubectl and Go (or helm) on their machine.
# It CANNOT run in the Bananas sandbox or its CI: there is no Docker daemon
# there (and no registry for kind's node image). There, `pytest tests/e2e`
# uses the local etcd + kube-apiserver control plane instead (docs/e2e.md).
#
# Steps: create the kind cluster (hack/kind-config.yaml), build the worker and
# operator images (docker/worker.Dockerfile, docker/operator.Dockerfile) plus an
# e2e worker image that adds the tests' handler module (tests/e2e/apps) to /app,
# tag it a second time for rollout tests, `kind load docker-image` them all,
# `helm upgrade --install bananas charts/bananas --wait` with the chart's Redis
# (its operator watches only bananas-system, so it never competes with the
# operators the tests run), port-forward that Redis for the tests, then run
# `pytest tests/e2e` with KUBECONFIG pointing at the cluster (the e2e fixtures
# then use it as an "existing" cluster, where pods really run). The cluster is
# deleted at the end unless BANANAS_KIND_KEEP=1.
#
# Environment:
#   KIND_CLUSTER_NAME   cluster name (default bananas-e2e); an existing
#                       cluster of that name is reused
#   KIND_NODE_IMAGE     node image (default: kind's own default)
#   BANANAS_IMAGE_TAG   tag of the built images (default e2e)
#   BANANAS_HELM_ARGS   extra `helm upgrade --install` arguments; the default
#                       --set flags name the images (see HELM_SET below)
#   BANANAS_KIND_KEEP   1: keep the cluster afterwards
#   PYTEST_ARGS are the script's own arguments: hack/e2e-kind.sh -x -k smoke
set -Eeuo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLUSTER=${KIND_CLUSTER_NAME:-bananas-e2e}
TAG=${BANANAS_IMAGE_TAG:-e2e}
WORKER_IMAGE="bananas-worker:$TAG"
E2E_IMAGE="bananas-worker-e2e:$TAG"
E2E_IMAGE_NEXT="bananas-worker-e2e:$TAG-next"
OPERATOR_IMAGE="bananas-operator:$TAG"
REDIS_PORT=${BANANAS_KIND_REDIS_PORT:-16379}
NAMESPACE=bananas-system
PYTHON="$REPO_ROOT/.venv/bin/python"

log() { printf 'e2e-kind: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for tool in docker kind kubectl; do
    command -v "$tool" >/dev/null || die "$tool is required (this script needs Docker and kind)"
done
docker info >/dev/null 2>&1 || die "no Docker daemon reachable; use 'pytest tests/e2e' (local control plane) instead"
[[ -x $PYTHON ]] || die "no $PYTHON; run 'make venv' first"
HELM=$(command -v helm || true)
if [[ -z $HELM ]]; then
    log "no helm on PATH: building it with hack/controlplane.sh"
    HELM="$("$REPO_ROOT/hack/controlplane.sh" helm | tail -1)/helm"
fi

WORKDIR=$(mktemp -d -t bananas-kind.XXXXXX)
KUBECONFIG_FILE="$WORKDIR/kubeconfig"
created=0
forward=""
cleanup() {
    local status=$?
    [[ -z $forward ]] || kill "$forward" 2>/dev/null || true
    if ((created)) && [[ ${BANANAS_KIND_KEEP:-0} != 1 ]]; then
        log "deleting kind cluster $CLUSTER"
        kind delete cluster --name "$CLUSTER" || true
    elif ((created)); then
        log "kept kind cluster $CLUSTER; kubeconfig: kind get kubeconfig --name $CLUSTER"
    fi
    rm -rf "$WORKDIR"
    exit "$status"
}
trap cleanup EXIT

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    log "reusing kind cluster $CLUSTER"
else
    log "creating kind cluster $CLUSTER"
    node_image=()
    [[ -n ${KIND_NODE_IMAGE:-} ]] && node_image=(--image "$KIND_NODE_IMAGE")
    kind create cluster --name "$CLUSTER" --config "$REPO_ROOT/hack/kind-config.yaml" \
        "${node_image[@]}" --wait 180s
    created=1
fi
kind get kubeconfig --name "$CLUSTER" >"$KUBECONFIG_FILE"
export KUBECONFIG="$KUBECONFIG_FILE"

log "building $WORKER_IMAGE and $OPERATOR_IMAGE"
docker build -f "$REPO_ROOT/docker/worker.Dockerfile" -t "$WORKER_IMAGE" "$REPO_ROOT"
docker build -f "$REPO_ROOT/docker/operator.Dockerfile" -t "$OPERATOR_IMAGE" "$REPO_ROOT"
# The worker image with the e2e handlers (BANANAS_APP=bananas_e2e_app) in its /app.
printf 'FROM %s\nCOPY bananas_e2e_app.py /app/\n' "$WORKER_IMAGE" |
    docker build -t "$E2E_IMAGE" -f - "$REPO_ROOT/tests/e2e/apps"
docker tag "$E2E_IMAGE" "$E2E_IMAGE_NEXT"
kind load docker-image --name "$CLUSTER" "$WORKER_IMAGE" "$OPERATOR_IMAGE" "$E2E_IMAGE" "$E2E_IMAGE_NEXT"

# Values of charts/bananas (operator.image, operator.scheduler.image; see values.yaml).
HELM_SET=(
    --set "operator.image.repository=bananas-operator" --set "operator.image.tag=$TAG"
    --set "operator.scheduler.image.repository=bananas-worker-e2e"
    --set "operator.scheduler.image.tag=$TAG"
    --set "operator.watchNamespaces={$NAMESPACE}"
    --set "redis.enabled=true" --set "redis.persistence.enabled=false"
)
read -r -a extra_helm_args <<<"${BANANAS_HELM_ARGS:-}"
log "installing charts/bananas into namespace $NAMESPACE"
"$HELM" upgrade --install bananas "$REPO_ROOT/charts/bananas" \
    --namespace "$NAMESPACE" --create-namespace --wait --timeout 5m \
    "${HELM_SET[@]}" "${extra_helm_args[@]}"

# The chart's Redis, for the tests (port-forwarded) and for the pods (its Service).
kubectl -n "$NAMESPACE" port-forward svc/bananas-redis "$REDIS_PORT:6379" >"$WORKDIR/port-forward.log" 2>&1 &
forward=$!
for _ in $(seq 100); do # until the forward accepts connections (at most 20 s)
    if (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null; then break; fi
    kill -0 "$forward" 2>/dev/null || die "kubectl port-forward exited: $(cat "$WORKDIR/port-forward.log")"
    sleep 0.2
done
export BANANAS_E2E_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export BANANAS_E2E_POD_REDIS_URL="redis://bananas-redis.$NAMESPACE.svc:6379/0"
export BANANAS_E2E_IMAGE="$E2E_IMAGE" BANANAS_E2E_IMAGE_NEXT="$E2E_IMAGE_NEXT"
export BANANAS_E2E_OPERATOR_IMAGE="$OPERATOR_IMAGE"

log "running pytest tests/e2e against $CLUSTER"
BANANAS_E2E_CLUSTER=existing "$PYTHON" -m pytest "$REPO_ROOT/tests/e2e" "$@"
