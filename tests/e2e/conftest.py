"""Fixtures for the e2e suite: a real Kubernetes API for every test run.

Which cluster:

* **local** (default): ``controlplane.ControlPlane`` starts etcd and
  kube-apiserver once per session on loopback (tier 1, ``kube_cluster``).
  ``kube_cluster_with_controllers`` (tier 2) is the *same* apiserver with
  kube-controller-manager started lazily on first use; it then keeps running
  for the rest of the session, so tier-1 tests must not rely on controllers
  being absent (check ``kube_cluster.has_controller_manager`` if it matters).
  ``pod_tier`` (tier 3) is again the same apiserver, plus kube-scheduler, kwok's
  fake nodes and the process kubelet (``podtier.py``), started on first use.
* **existing**: with ``KUBECONFIG`` set, or ``BANANAS_E2E_CLUSTER=existing``
  (then ``~/.kube/config`` when ``KUBECONFIG`` is unset), both fixtures are
  that cluster, e.g. kind via ``hack/e2e-kind.sh``. ``BANANAS_E2E_CLUSTER=local``
  forces the local control plane even with ``KUBECONFIG`` set. There
  ``pod_tier`` is the cluster itself, where pods really run; tests that need
  the simulation (the fake GPU node, the process kubelet's event log) skip
  there, saying why (``PodTierCluster.require_local``).

Binaries (local mode) are looked up the envtest way (see ``controlplane.py``).
Missing ones are built with ``hack/controlplane.sh`` in
``pytest_collection_finish``, i.e. before any test starts, because a cold
build takes far longer than the per-test timeout that covers fixture setup;
the build is skipped when no selected test is an e2e test or with
``--collect-only``. ``BANANAS_E2E_BUILD=0`` turns the automatic build off.
When the binaries cannot be had: with ``CI=true`` every e2e test *fails* (e2e
is never silently skipped in CI); elsewhere the tests are skipped if there is
no Go toolchain or the build was turned off, and fail if a build failed.

Per test: ``kube_api`` is a ``kubernetes_asyncio`` ``ApiClient`` for the
admin kubeconfig, and ``namespace`` a fresh namespace deleted afterwards
(without a controller-manager the deletion is only requested: the namespace
stays Terminating because nothing finalizes it).

Every test under ``tests/e2e`` gets the ``e2e`` marker.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NoReturn

import pytest
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.rest import ApiException

from .controlplane import (
    ETCD,
    KUBE_APISERVER,
    KUBE_CONTROLLER_MANAGER,
    KWOK,
    POD_TIER,
    Binaries,
    BinariesNotFound,
    ControlPlane,
    ControlPlaneError,
    ExistingCluster,
    KubeCluster,
    build_binaries,
    cache_dir,
    find_binaries,
    go_available,
    locate_binary,
    locate_kwok_stages,
    missing_binaries,
)
from .podtier import PodTier

HERE = Path(__file__).resolve().parent
TIER2_FIXTURE = "kube_cluster_with_controllers"
POD_TIER_FIXTURE = "pod_tier"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def cluster_mode() -> Literal["local", "existing"]:
    mode = os.environ.get("BANANAS_E2E_CLUSTER", "").strip().lower()
    if mode in {"local", "existing"}:
        return "local" if mode == "local" else "existing"
    if mode:
        raise pytest.UsageError(f"BANANAS_E2E_CLUSTER must be 'local' or 'existing', not {mode!r}")
    return "existing" if os.environ.get("KUBECONFIG") else "local"


def existing_kubeconfig() -> Path:
    """The first file of ``KUBECONFIG`` (a path list), else ``~/.kube/config``."""
    paths = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    return Path(paths[0]).expanduser() if paths else Path.home() / ".kube" / "config"


def _is_e2e(item: pytest.Item) -> bool:
    return Path(item.path).resolve().is_relative_to(HERE)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark everything in this directory ``e2e`` (before ``-m`` selects)."""
    for item in items:
        if _is_e2e(item):
            item.add_marker(pytest.mark.e2e)


# --------------------------------------------------------------------------
# Binaries: found or built before the first test, outside any test timeout
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class BinaryProblem:
    """Why the local control plane cannot start; ``fatal`` fails even outside CI."""

    message: str
    fatal: bool


_PROBLEM = pytest.StashKey[BinaryProblem | None]()


def _missing(wanted: list[str]) -> list[str]:
    missing = missing_binaries(wanted)
    if KWOK in wanted and KWOK not in missing and locate_kwok_stages(locate_binary(KWOK)) is None:
        missing.append(KWOK)  # a kwok without its Stage configs: the script copies them
    return missing


def _prepare_binaries(
    need_controller_manager: bool, need_pod_tier: bool, report: object | None
) -> BinaryProblem | None:
    wanted = [ETCD, KUBE_APISERVER]
    if need_controller_manager or need_pod_tier:
        wanted.append(KUBE_CONTROLLER_MANAGER)
    if need_pod_tier:
        wanted += POD_TIER
    try:
        missing = _missing(wanted)
    except BinariesNotFound as exc:  # a TEST_ASSET_* pointing at nothing
        return BinaryProblem(str(exc), fatal=True)
    if not missing:
        return None
    if os.environ.get("BANANAS_E2E_BUILD", "1") == "0":
        return BinaryProblem(f"missing {', '.join(missing)} and BANANAS_E2E_BUILD=0", fatal=False)
    if not go_available():
        return BinaryProblem(
            f"missing {', '.join(missing)} and no Go toolchain to build them: run "
            "hack/controlplane.sh where Go is installed, or set KUBEBUILDER_ASSETS",
            fatal=False,
        )
    log = cache_dir() / "pytest-build.log"
    write_line = getattr(report, "write_line", None)
    if callable(write_line):
        write_line(
            f"e2e: building {' '.join(missing)} with hack/controlplane.sh "
            f"(a cold build takes many minutes; progress in {log})"
        )
    try:
        build_binaries(missing, log)
    except ControlPlaneError as exc:
        return BinaryProblem(str(exc), fatal=True)
    if still := _missing(wanted):  # e.g. BANANAS_CACHE changed under us
        message = f"hack/controlplane.sh ran but {', '.join(still)} still not found"
        return BinaryProblem(message, fatal=True)
    return None


def pytest_collection_finish(session: pytest.Session) -> None:
    """Find or build the binaries the selected e2e tests need."""
    problem: BinaryProblem | None = None
    # Only the tests that use a cluster (every cluster fixture depends on kube_cluster).
    e2e_items = [
        item
        for item in session.items
        if _is_e2e(item) and "kube_cluster" in getattr(item, "fixturenames", ())
    ]
    if e2e_items and not session.config.option.collectonly and cluster_mode() == "local":
        names = [set(getattr(item, "fixturenames", ())) for item in e2e_items]
        need_manager = any(TIER2_FIXTURE in n for n in names)
        need_pods = any(POD_TIER_FIXTURE in n for n in names)
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        problem = _prepare_binaries(need_manager, need_pods, reporter)
    session.config.stash[_PROBLEM] = problem


def _give_up(message: str, *, fatal: bool) -> NoReturn:
    """Fail in CI (or when fatal), skip elsewhere."""
    if fatal or in_ci():
        pytest.fail(f"e2e control plane unavailable: {message}", pytrace=False)
    pytest.skip(f"e2e control plane unavailable: {message}")


def _binaries(
    config: pytest.Config, *, controller_manager: bool, pod_tier: bool = False
) -> Binaries:
    """The binaries, or give up with the reason recorded at collection time."""
    try:
        return find_binaries(
            require_controller_manager=controller_manager, require_pod_tier=pod_tier
        )
    except BinariesNotFound as exc:
        problem = config.stash.get(_PROBLEM, None)
        if problem is None:
            _give_up(str(exc), fatal=False)
        _give_up(problem.message, fatal=problem.fatal)


# --------------------------------------------------------------------------
# Cluster fixtures
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kube_cluster(request: pytest.FixtureRequest) -> Iterator[KubeCluster]:
    """Tier 1: an apiserver (local etcd + kube-apiserver, or the existing cluster)."""
    if cluster_mode() == "existing":
        path = existing_kubeconfig()
        if not path.is_file():
            pytest.fail(f"existing-cluster mode but no kubeconfig at {path}", pytrace=False)
        yield ExistingCluster.from_kubeconfig(path)
        return

    plane = ControlPlane(_binaries(request.config, controller_manager=False))
    try:
        plane.start()
    except ControlPlaneError as exc:
        pytest.fail(f"the local control plane did not start: {exc}", pytrace=False)
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def kube_cluster_with_controllers(
    kube_cluster: KubeCluster, request: pytest.FixtureRequest
) -> KubeCluster:
    """Tier 2: the same apiserver, plus kube-controller-manager (started lazily)."""
    if isinstance(kube_cluster, ControlPlane):
        if kube_cluster.binaries.kube_controller_manager is None:
            kube_cluster.binaries = _binaries(request.config, controller_manager=True)
        try:
            kube_cluster.start_controller_manager()
        except ControlPlaneError as exc:
            pytest.fail(f"kube-controller-manager did not start: {exc}", pytrace=False)
    assert kube_cluster.has_controller_manager
    return kube_cluster


@dataclass(frozen=True)
class PodTierCluster:
    """Tier 3: a cluster where pods run (local: kwok + process kubelet; existing: real)."""

    cluster: KubeCluster
    local: PodTier | None

    @property
    def kubeconfig(self) -> Path:
        return self.cluster.kubeconfig

    @property
    def simulated(self) -> bool:
        return self.local is not None

    def require_local(self, why: str) -> PodTier:
        """The local tier, or skip: the test relies on the simulation (``why``)."""
        if self.local is None:
            pytest.skip(f"needs the local pod tier: {why}")
        return self.local


@pytest.fixture(scope="session")
def pod_tier(
    kube_cluster_with_controllers: KubeCluster, request: pytest.FixtureRequest
) -> PodTierCluster:
    """Tier 3: kube-scheduler, kwok's fake nodes and the process kubelet (started lazily)."""
    cluster = kube_cluster_with_controllers
    if not isinstance(cluster, ControlPlane):
        return PodTierCluster(cluster, None)
    if cluster.binaries.kube_scheduler is None or cluster.binaries.kwok is None:
        cluster.binaries = _binaries(request.config, controller_manager=True, pod_tier=True)
    tier = _POD_TIERS.get(id(cluster))
    if tier is None:
        tier = _POD_TIERS[id(cluster)] = PodTier(cluster)
    try:
        tier.start()
    except ControlPlaneError as exc:
        pytest.fail(f"the pod tier did not start: {exc}", pytrace=False)
    return PodTierCluster(cluster, tier)


_POD_TIERS: dict[int, PodTier] = {}


# --------------------------------------------------------------------------
# Per-test helpers
# --------------------------------------------------------------------------


@pytest.fixture
async def kube_api(kube_cluster: KubeCluster) -> AsyncIterator[client.ApiClient]:
    """A ``kubernetes_asyncio`` ApiClient for the cluster's admin kubeconfig."""
    api = await config.new_client_from_config(config_file=str(kube_cluster.kubeconfig))
    try:
        yield api
    finally:
        await api.close()


def namespace_name(test_name: str) -> str:
    """A DNS-1123 label from the test's name plus a random suffix (<= 63 chars)."""
    stem = re.sub(r"[^a-z0-9-]+", "-", test_name.lower()).strip("-")[:45].strip("-")
    return f"e2e-{stem}-{secrets.token_hex(4)}"


@pytest.fixture
async def namespace(
    kube_api: client.ApiClient, request: pytest.FixtureRequest
) -> AsyncIterator[str]:
    """A fresh namespace for one test, deleted after it."""
    core = client.CoreV1Api(kube_api)
    name = namespace_name(request.node.name)
    body = client.V1Namespace(
        metadata=client.V1ObjectMeta(name=name, labels={"bananas.dev/e2e": "true"})
    )
    await core.create_namespace(body)
    try:
        yield name
    finally:
        try:
            await core.delete_namespace(name)
        except ApiException as exc:
            if exc.status != 404:
                raise
