"""A real Kubernetes control plane for the e2e tests, started from local binaries.

Tier 1 is etcd plus kube-apiserver; tier 2 adds kube-controller-manager, so
Deployments get ReplicaSets and Pods, namespaces are finalized and the garbage
collector removes owned objects. Tier 3, the pod tier, adds kube-scheduler and
kwok (fake nodes that move pods through their lifecycle); ``podtier.py`` adds
the process kubelet that runs Bananas pods as real processes. There is no CNI
or DNS.

Design:

* Binaries are found the envtest way (:func:`find_binaries`): per-binary
  ``TEST_ASSET_ETCD`` / ``TEST_ASSET_KUBE_APISERVER`` /
  ``TEST_ASSET_KUBE_CONTROLLER_MANAGER``, then the ``KUBEBUILDER_ASSETS``
  directory (setup-envtest's layout), then the repository cache that
  ``hack/controlplane.sh`` fills (:func:`build_binaries` runs it).
* :class:`ControlPlane` owns one private temporary directory holding the PKI
  (made with the ``openssl`` CLI), the static token file, the kubeconfigs,
  etcd's data and each process's log. Every process listens on a free
  loopback port only. Readiness is polled with deadlines (etcd ``/health``,
  apiserver ``/readyz``, controller-manager ``/healthz`` plus the ``default``
  ServiceAccount its controllers create), and a process that exits while we
  wait fails the start at once with the tail of its log.
* Credentials are static bearer tokens: an admin in ``system:masters``, an
  unprivileged user (so RBAC tests can see a 403; ``--authorization-mode=RBAC``)
  and ``system:kube-controller-manager``, whose controllers then act as their
  own ServiceAccounts (``--use-service-account-credentials``) with tokens signed
  by the service-account key the harness generates.
* Teardown (:meth:`ControlPlane.stop`) terminates, waits, then kills and waits
  again, in reverse start order, and removes the directory; it is idempotent
  and also registered with :mod:`atexit`. Children are started through
  ``setpriv --pdeathsig KILL`` when available, so even a SIGKILLed pytest
  leaves no stray etcd or apiserver behind (only its temporary directory).
  KILL, not TERM: all children would get the signal at once, and an
  apiserver shutting down gracefully without its etcd hangs for minutes.

This module has no pytest dependency; ``conftest.py`` wraps it in fixtures.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import secrets
import shutil
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Literal, Protocol, Self

from tests.support.ports import free_port
from tests.support.waiting import eventually

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTROLPLANE_SCRIPT = REPO_ROOT / "hack" / "controlplane.sh"
VERSIONS_FILE = REPO_ROOT / "hack" / "controlplane" / "versions.env"

ETCD = "etcd"
KUBE_APISERVER = "kube-apiserver"
KUBE_CONTROLLER_MANAGER = "kube-controller-manager"
KUBE_SCHEDULER = "kube-scheduler"
KWOK = "kwok"
#: envtest's per-binary override variables (the last two are this project's, same style).
ASSET_ENV = {
    ETCD: "TEST_ASSET_ETCD",
    KUBE_APISERVER: "TEST_ASSET_KUBE_APISERVER",
    KUBE_CONTROLLER_MANAGER: "TEST_ASSET_KUBE_CONTROLLER_MANAGER",
    KUBE_SCHEDULER: "TEST_ASSET_KUBE_SCHEDULER",
    KWOK: "TEST_ASSET_KWOK",
}
#: A directory of kwok's Stage configs (``node/...``, ``pod/...``), as the script copies them.
KWOK_STAGES_ENV = "TEST_ASSET_KWOK_STAGES"
POD_TIER = (KUBE_SCHEDULER, KWOK)

SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
ADMIN_USER = "bananas-e2e-admin"
UNPRIVILEGED_USER = "bananas-e2e-unprivileged"
CONTROLLER_MANAGER_USER = "system:kube-controller-manager"
SCHEDULER_USER = "system:kube-scheduler"
KWOK_USER = "bananas-e2e-kwok"
PROCESS_KUBELET_USER = "bananas-e2e-process-kubelet"
#: Users with static tokens in ``system:masters``.
_MASTERS = (ADMIN_USER, KWOK_USER, PROCESS_KUBELET_USER)

_POLL_INTERVAL = 0.1
_STOP_TIMEOUT = 10.0


class ControlPlaneError(RuntimeError):
    """The control plane could not be built, found, started or reached."""


class BinariesNotFound(ControlPlaneError):
    """A binary is neither configured nor in the repository cache."""


# --------------------------------------------------------------------------
# Finding and building the binaries
# --------------------------------------------------------------------------


def pinned_versions() -> dict[str, str]:
    """``hack/controlplane/versions.env`` as a dict (``KEY=VALUE`` lines)."""
    versions: dict[str, str] = {}
    for raw in VERSIONS_FILE.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            versions[key.strip()] = value.strip()
    return versions


def kubernetes_version() -> str:
    """The Kubernetes version ``hack/controlplane.sh`` builds (env override first)."""
    return os.environ.get("BANANAS_K8S_VERSION") or pinned_versions()["K8S_VERSION"]


def cache_dir() -> Path:
    """``hack/controlplane.sh``'s cache: ``${BANANAS_CACHE:-<repo>/.cache}/controlplane``."""
    return Path(os.environ.get("BANANAS_CACHE") or REPO_ROOT / ".cache") / "controlplane"


def cache_bin_dir() -> Path:
    """Where ``hack/controlplane.sh`` puts the binaries for the pinned version."""
    return cache_dir() / kubernetes_version() / "bin"


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def locate_binary(name: str) -> Path | None:
    """One binary, looked up in envtest's order; ``None`` when nowhere.

    An explicit ``TEST_ASSET_*`` that points at nothing usable is an error,
    not a reason to fall back silently to another binary.
    """
    explicit = os.environ.get(ASSET_ENV[name])
    if explicit:
        path = Path(explicit)
        if not _executable(path):
            raise BinariesNotFound(f"{ASSET_ENV[name]}={explicit} is not an executable file")
        return path
    candidates = []
    if assets := os.environ.get("KUBEBUILDER_ASSETS"):
        candidates.append(Path(assets) / name)
    candidates.append(cache_bin_dir() / name)
    return next((path for path in candidates if _executable(path)), None)


@dataclass(frozen=True)
class Binaries:
    """Paths of the control-plane binaries (all but etcd and the apiserver are optional)."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path | None = None
    kube_scheduler: Path | None = None
    kwok: Path | None = None


def locate_kwok_stages(kwok: Path | None = None) -> Path | None:
    """kwok's Stage configs: ``TEST_ASSET_KWOK_STAGES``, else ``share/kwok/stages`` beside
    the ``bin/`` holding ``kwok`` (the script's layout), else the cache's."""
    if explicit := os.environ.get(KWOK_STAGES_ENV):
        path = Path(explicit)
        if not (path / "pod").is_dir():
            raise BinariesNotFound(f"{KWOK_STAGES_ENV}={explicit} holds no pod/ Stage configs")
        return path
    candidates = [kwok.resolve().parent.parent / "share" / "kwok" / "stages"] if kwok else []
    candidates.append(cache_bin_dir().parent / "share" / "kwok" / "stages")
    return next((path for path in candidates if (path / "pod").is_dir()), None)


def missing_binaries(names: Sequence[str]) -> list[str]:
    """Which of ``names`` :func:`locate_binary` cannot find."""
    return [name for name in names if locate_binary(name) is None]


def find_binaries(
    *, require_controller_manager: bool = False, require_pod_tier: bool = False
) -> Binaries:
    """Locate the binaries or raise :class:`BinariesNotFound` saying where we looked."""
    needed = [ETCD, KUBE_APISERVER]
    if require_controller_manager or require_pod_tier:
        needed.append(KUBE_CONTROLLER_MANAGER)
    if require_pod_tier:
        needed += POD_TIER
    if missing := missing_binaries(needed):
        assets = os.environ.get("KUBEBUILDER_ASSETS", "<unset>")
        raise BinariesNotFound(
            f"missing {', '.join(missing)}: looked at "
            f"{', '.join(ASSET_ENV[name] for name in missing)}, "
            f"KUBEBUILDER_ASSETS={assets} and {cache_bin_dir()}; "
            f"build them with hack/controlplane.sh (needs Go) or point KUBEBUILDER_ASSETS "
            f"at a directory holding them"
        )
    etcd, apiserver, manager, scheduler, kwok = (
        locate_binary(name)
        for name in (ETCD, KUBE_APISERVER, KUBE_CONTROLLER_MANAGER, KUBE_SCHEDULER, KWOK)
    )
    assert etcd is not None and apiserver is not None
    if require_pod_tier and locate_kwok_stages(kwok) is None:
        raise BinariesNotFound(
            f"kwok's Stage configs are missing: set {KWOK_STAGES_ENV} or run "
            f"hack/controlplane.sh kwok (it copies them to {cache_bin_dir().parent}/share)"
        )
    return Binaries(
        etcd=etcd,
        kube_apiserver=apiserver,
        kube_controller_manager=manager,
        kube_scheduler=scheduler,
        kwok=kwok,
    )


def go_available() -> bool:
    """Whether ``hack/controlplane.sh`` would find a Go toolchain (same lookup)."""
    wanted = os.environ.get("GO") or "go"
    if shutil.which(wanted):
        return True
    return wanted == "go" and _executable(Path("/usr/local/go/bin/go"))


def build_binaries(components: Sequence[str], log_path: Path) -> Path:
    """Run ``hack/controlplane.sh COMPONENT...``; return the bin dir it prints.

    Its progress goes to ``log_path``. A cold build compiles Kubernetes and
    takes many minutes; a warm one (binaries cached) takes seconds.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        result = subprocess.run(
            [str(CONTROLPLANE_SCRIPT), *components],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        raise ControlPlaneError(
            f"{CONTROLPLANE_SCRIPT.name} {' '.join(components)} failed with exit "
            f"{result.returncode}; its log ({log_path}) ends with:\n{_tail(log_path, 60)}"
        )
    lines = result.stdout.strip().splitlines()
    if not lines:
        raise ControlPlaneError(f"{CONTROLPLANE_SCRIPT.name} printed no bin dir; see {log_path}")
    return Path(lines[-1])


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"


_SETPRIV = shutil.which("setpriv")


class ManagedProcess:
    """A child process whose output goes to a log file, stopped reliably.

    With ``setpriv`` (util-linux) on PATH the child gets SIGKILL when this
    Python process dies, whatever kills it.
    """

    def __init__(
        self, name: str, argv: Sequence[str], log_path: Path, *, cwd: Path | None = None
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("wb")
        prefix = [_SETPRIV, "--pdeathsig", "KILL", "--"] if _SETPRIV else []
        try:
            self._proc = subprocess.Popen(
                [*prefix, *argv],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                close_fds=True,
                cwd=cwd,
            )
        except BaseException:
            self._log.close()
            raise

    @property
    def pid(self) -> int:
        return self._proc.pid

    def running(self) -> bool:
        return self._proc.poll() is None

    def exit_code(self) -> int | None:
        return self._proc.poll()

    def log_tail(self, lines: int = 40) -> str:
        self._log.flush()
        return _tail(self.log_path, lines)

    def stop(self, timeout: float = _STOP_TIMEOUT) -> None:
        """Terminate, wait, then kill and wait: the process is always reaped."""
        try:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
        finally:
            self._log.close()


def _insecure() -> ssl.SSLContext:
    """For the self-signed serving certs of the controller-manager and scheduler."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _http_status(
    url: str, *, token: str | None = None, context: ssl.SSLContext | None = None
) -> int | None:
    """The HTTP status of a GET, or ``None`` when the server cannot be reached."""
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=2, context=context) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def poll_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    watch: Sequence[ManagedProcess] = (),
) -> None:
    """Poll ``check`` until it is true; fail fast if a watched process exits."""

    def watched_check() -> bool:
        for proc in watch:
            if not proc.running():
                raise ControlPlaneError(
                    f"{proc.name} exited with code {proc.exit_code()} while waiting for {what}; "
                    f"its log ({proc.log_path}) ends with:\n{proc.log_tail()}"
                )
        return check()

    def described() -> str:
        logs = "\n".join(f"--- {p.name} ({p.log_path}):\n{p.log_tail(20)}" for p in watch)
        return f"{what}\n{logs}"

    eventually(
        watched_check, timeout, interval=_POLL_INTERVAL, what=described, error=ControlPlaneError
    )


# --------------------------------------------------------------------------
# PKI, tokens and kubeconfigs
# --------------------------------------------------------------------------

_OPENSSL_CONFIG = """\
[req]
distinguished_name = req_dn
[req_dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[serving]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
authorityKeyIdentifier = keyid
"""


@dataclass(frozen=True)
class Pki:
    """Files made by :func:`make_pki`."""

    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    service_account_key: Path
    service_account_pub: Path


def _openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ControlPlaneError(
            "the openssl CLI is needed to make the test PKI (apt-get install openssl)"
        )
    result = subprocess.run(
        [openssl, *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ControlPlaneError(f"openssl {' '.join(args)} failed:\n{result.stderr}")


def make_pki(directory: Path) -> Pki:
    """A throwaway CA, an apiserver serving cert for 127.0.0.1, and an RSA service-account key."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "openssl.cnf").write_text(_OPENSSL_CONFIG)
    new_ec_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    x509 = ["req", "-x509", "-config", "openssl.cnf", "-days", "7", *new_ec_key]
    _openssl(*x509, "-extensions", "ca", "-subj", "/CN=bananas-e2e-ca",
             "-keyout", "ca.key", "-out", "ca.crt", cwd=directory)  # fmt: skip
    _openssl(*x509, "-extensions", "serving", "-subj", "/CN=kube-apiserver",
             "-CA", "ca.crt", "-CAkey", "ca.key",
             "-keyout", "apiserver.key", "-out", "apiserver.crt", cwd=directory)  # fmt: skip
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
             "-out", "sa.key", cwd=directory)  # fmt: skip
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=directory)
    return Pki(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        service_account_key=directory / "sa.key",
        service_account_pub=directory / "sa.pub",
    )


def write_kubeconfig(path: Path, *, server: str, ca_cert: Path, user: str, token: str) -> Path:
    """A single-context kubeconfig (JSON, which every YAML reader accepts)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "bananas-e2e",
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_cert.read_bytes()).decode(),
                },
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "bananas-e2e", "context": {"cluster": "bananas-e2e", "user": user}}],
        "current-context": "bananas-e2e",
    }
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)
    return path


# --------------------------------------------------------------------------
# Clusters
# --------------------------------------------------------------------------


class KubeCluster(Protocol):
    """What the e2e fixtures hand to tests, for a local or an existing cluster."""

    @property
    def kubeconfig(self) -> Path: ...

    @property
    def server(self) -> str: ...

    @property
    def has_controller_manager(self) -> bool: ...

    @property
    def kind(self) -> Literal["local", "existing"]: ...


@dataclass(frozen=True)
class ExistingCluster:
    """A cluster someone else runs (kind, a CI cluster...), reached through a kubeconfig."""

    kubeconfig: Path
    server: str
    has_controller_manager: bool = True
    kind: Literal["existing"] = "existing"

    @classmethod
    def from_kubeconfig(cls, path: Path) -> ExistingCluster:
        """Read the server URL of the kubeconfig's current context."""
        import yaml  # PyYAML comes with kubernetes_asyncio

        try:
            config = yaml.safe_load(path.read_text())
            context_name = config["current-context"]
            context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
            cluster = next(
                c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"]
            )
            server = str(cluster["server"])
        except (OSError, yaml.YAMLError, KeyError, TypeError, StopIteration) as exc:
            raise ControlPlaneError(
                f"no server for the current context in {path}: {exc!r}"
            ) from exc
        return cls(kubeconfig=path, server=server)


_LIVE: set[ControlPlane] = set()


@atexit.register
def _stop_leftovers() -> None:
    for plane in list(_LIVE):
        plane.stop()


class ControlPlane:
    """etcd + kube-apiserver (+ kube-controller-manager on demand) on loopback.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. The
    admin kubeconfig is :attr:`kubeconfig`; :meth:`kubeconfig_for` gives the
    unprivileged user's. Set ``keep_workdir`` (or ``BANANAS_E2E_KEEP=1``) to
    keep the temporary directory with its logs after :meth:`stop`.
    """

    kind: Literal["local"] = "local"

    def __init__(
        self,
        binaries: Binaries,
        *,
        start_timeout: float = 90.0,
        keep_workdir: bool | None = None,
    ) -> None:
        self.binaries = binaries
        self.start_timeout = start_timeout
        if keep_workdir is None:
            keep_workdir = os.environ.get("BANANAS_E2E_KEEP") == "1"
        self.keep_workdir = keep_workdir
        self.workdir = Path(tempfile.mkdtemp(prefix="bananas-e2e-"))
        self.logs_dir = self.workdir / "logs"
        self.logs_dir.mkdir()
        self._tokens = {
            user: secrets.token_hex(16)
            for user in (
                ADMIN_USER,
                UNPRIVILEGED_USER,
                CONTROLLER_MANAGER_USER,
                SCHEDULER_USER,
                KWOK_USER,
                PROCESS_KUBELET_USER,
            )
        }
        self._pki: Pki | None = None
        self._etcd: ManagedProcess | None = None
        self._apiserver: ManagedProcess | None = None
        self._controller_manager: ManagedProcess | None = None
        self._scheduler: ManagedProcess | None = None
        self._kwok: ManagedProcess | None = None
        self._adopted: list[ManagedProcess] = []
        self._server: str | None = None
        self._kubeconfigs: dict[str, Path] = {}
        self._etcd_url = ""
        self._stopped = False
        _LIVE.add(self)  # from here on, atexit removes the workdir at the latest

    # -- public view -------------------------------------------------------

    @property
    def server(self) -> str:
        if self._server is None:
            raise ControlPlaneError("the control plane is not started")
        return self._server

    @property
    def kubeconfig(self) -> Path:
        return self.kubeconfig_for(ADMIN_USER)

    def kubeconfig_for(self, user: str) -> Path:
        """The kubeconfig of ``ADMIN_USER``, ``UNPRIVILEGED_USER`` or the controller-manager."""
        if user not in self._kubeconfigs:
            known = ", ".join(sorted(self._kubeconfigs)) or "none: not started"
            raise ControlPlaneError(f"no kubeconfig for {user!r} ({known})")
        return self._kubeconfigs[user]

    @property
    def ca_cert(self) -> Path:
        if self._pki is None:
            raise ControlPlaneError("the control plane is not started")
        return self._pki.ca_cert

    @property
    def has_controller_manager(self) -> bool:
        return self._controller_manager is not None and self._controller_manager.running()

    @property
    def has_scheduler(self) -> bool:
        return self._scheduler is not None and self._scheduler.running()

    @property
    def has_kwok(self) -> bool:
        return self._kwok is not None and self._kwok.running()

    def processes(self) -> Iterator[ManagedProcess]:
        """The running children, in start order."""
        for proc in (self._etcd, self._apiserver, self._controller_manager, self._scheduler):
            if proc is not None:
                yield proc
        if self._kwok is not None:
            yield self._kwok
        yield from self._adopted

    def adopt(self, proc: ManagedProcess) -> None:
        """Stop ``proc`` with the control plane (first, being started last)."""
        self._adopted.append(proc)

    def kubeconfig_for_new_user(self, user: str) -> Path:
        """A kubeconfig for one of the static-token users (e.g. ``PROCESS_KUBELET_USER``)."""
        if user not in self._tokens:
            raise ControlPlaneError(f"no static token for {user!r}")
        return self._user_kubeconfig(user, f"{user.replace(':', '-')}.kubeconfig")

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, *, attempts: int = 3) -> Self:
        """Start etcd and kube-apiserver; return once ``/readyz`` says ok.

        A port taken between :func:`free_port` and the bind is retried with
        fresh ports; any other failure stops everything and raises.
        """
        if self._stopped:
            raise ControlPlaneError("a stopped ControlPlane cannot be restarted")
        try:
            self._pki = make_pki(self.workdir / "pki")
            self._write_token_file()
            for attempt in range(1, attempts + 1):
                try:
                    self._start_etcd()
                    self._start_apiserver()
                    break
                except ControlPlaneError as exc:
                    self._stop_processes()
                    if attempt == attempts or "address already in use" not in str(exc):
                        raise
        except BaseException:
            self.stop()
            raise
        return self

    def start_controller_manager(self) -> None:
        """Start kube-controller-manager (idempotent) and wait until its controllers work."""
        if self._controller_manager is not None and self._controller_manager.running():
            return
        if self._apiserver is None or self._pki is None:
            raise ControlPlaneError("start the control plane before its controller-manager")
        if self.binaries.kube_controller_manager is None:
            raise BinariesNotFound(f"no {KUBE_CONTROLLER_MANAGER} binary was found")
        port = free_port()
        kubeconfig = write_kubeconfig(
            self.workdir / "controller-manager.kubeconfig",
            server=self.server,
            ca_cert=self._pki.ca_cert,
            user=CONTROLLER_MANAGER_USER,
            token=self._tokens[CONTROLLER_MANAGER_USER],
        )
        self._kubeconfigs[CONTROLLER_MANAGER_USER] = kubeconfig
        self._controller_manager = ManagedProcess(
            KUBE_CONTROLLER_MANAGER,
            [
                str(self.binaries.kube_controller_manager),
                f"--kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self.workdir / 'controller-manager-certs'}",
                "--leader-elect=false",
                "--controllers=*",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={self._pki.service_account_key}",
                f"--root-ca-file={self._pki.ca_cert}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            ],
            self.logs_dir / "kube-controller-manager.log",
        )
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE  # its self-signed serving cert
        admin = self._tokens[ADMIN_USER]
        context = self._client_context()
        watch = list(self.processes())
        poll_until(
            lambda: _http_status(f"https://127.0.0.1:{port}/healthz", context=insecure) == 200,
            timeout=self.start_timeout,
            what="kube-controller-manager /healthz",
            watch=watch,
        )
        # The serviceaccount controller creating default/default shows the
        # controllers really run against this apiserver.
        poll_until(
            lambda: (
                _http_status(
                    f"{self.server}/api/v1/namespaces/default/serviceaccounts/default",
                    token=admin,
                    context=context,
                )
                == 200
            ),
            timeout=self.start_timeout,
            what="the default ServiceAccount (controllers running)",
            watch=watch,
        )

    def start_scheduler(self) -> None:
        """Start kube-scheduler (idempotent) as ``system:kube-scheduler``; wait for /healthz."""
        if self.has_scheduler:
            return
        if self._apiserver is None or self._pki is None:
            raise ControlPlaneError("start the control plane before its scheduler")
        if self.binaries.kube_scheduler is None:
            raise BinariesNotFound(f"no {KUBE_SCHEDULER} binary was found")
        port = free_port()
        kubeconfig = self._user_kubeconfig(SCHEDULER_USER, "kube-scheduler.kubeconfig")
        self._scheduler = ManagedProcess(
            KUBE_SCHEDULER,
            [
                str(self.binaries.kube_scheduler),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self.workdir / 'kube-scheduler-certs'}",
                "--leader-elect=false",
            ],
            self.logs_dir / "kube-scheduler.log",
        )
        poll_until(
            lambda: _http_status(f"https://127.0.0.1:{port}/healthz", context=_insecure()) == 200,
            timeout=self.start_timeout,
            what="kube-scheduler /healthz",
            watch=list(self.processes()),
        )

    def start_kwok(self, config: Path) -> None:
        """Start kwok (idempotent) with the Stage configs in ``config``; wait for /healthz.

        kwok manages only the nodes annotated ``kwok.x-k8s.io/node=fake`` (and
        the pods bound to them), with a ``system:masters`` token of its own.
        """
        if self.has_kwok:
            return
        if self._apiserver is None or self._pki is None:
            raise ControlPlaneError("start the control plane before kwok")
        if self.binaries.kwok is None:
            raise BinariesNotFound(f"no {KWOK} binary was found")
        port = free_port()
        kubeconfig = self._user_kubeconfig(KWOK_USER, "kwok.kubeconfig")
        self._kwok = ManagedProcess(
            KWOK,
            [
                str(self.binaries.kwok),
                f"--config={config}",
                f"--kubeconfig={kubeconfig}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                f"--server-address=127.0.0.1:{port}",
                "--node-ip=127.0.0.1",
                "--cidr=10.244.0.1/16",
            ],
            self.logs_dir / "kwok.log",
        )
        poll_until(
            lambda: _http_status(f"http://127.0.0.1:{port}/healthz") == 200,
            timeout=self.start_timeout,
            what="kwok /healthz",
            watch=list(self.processes()),
        )

    def stop(self) -> None:
        """Stop every process (reverse order) and remove the workdir. Idempotent."""
        self._stopped = True
        try:
            self._stop_processes()
        finally:
            _LIVE.discard(self)
            if not self.keep_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)

    # -- internals ---------------------------------------------------------

    def _user_kubeconfig(self, user: str, filename: str) -> Path:
        assert self._pki is not None
        self._kubeconfigs[user] = write_kubeconfig(
            self.workdir / filename,
            server=self.server,
            ca_cert=self._pki.ca_cert,
            user=user,
            token=self._tokens[user],
        )
        return self._kubeconfigs[user]

    def _client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_cert))

    def _write_token_file(self) -> None:
        groups = dict.fromkeys(_MASTERS, "system:masters")
        # token,user,uid,"group1,group2"
        lines = [
            f'{tok},{user},{user},"{groups.get(user, "")}"' for user, tok in self._tokens.items()
        ]
        path = self.workdir / "tokens.csv"
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)

    def _start_etcd(self) -> None:
        client, peer = free_port(), free_port()
        client_url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
        data_dir = self.workdir / "etcd"
        shutil.rmtree(data_dir, ignore_errors=True)
        self._etcd = ManagedProcess(
            ETCD,
            [
                str(self.binaries.etcd),
                "--name=bananas-e2e",
                f"--data-dir={data_dir}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=bananas-e2e={peer_url}",
                "--unsafe-no-fsync",  # throwaway data: trade durability for speed
                "--log-level=warn",
            ],
            self.logs_dir / "etcd.log",
        )
        self._etcd_url = client_url
        poll_until(
            lambda: _http_status(f"{client_url}/health") == 200,
            timeout=self.start_timeout,
            what="etcd /health",
            watch=[self._etcd],
        )

    def _start_apiserver(self) -> None:
        assert self._pki is not None and self._etcd is not None
        port = free_port()
        self._server = f"https://127.0.0.1:{port}"
        pki = self._pki
        self._apiserver = ManagedProcess(
            KUBE_APISERVER,
            [
                str(self.binaries.kube_apiserver),
                f"--etcd-servers={self._etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self.workdir / 'apiserver-certs'}",
                f"--tls-cert-file={pki.serving_cert}",
                f"--tls-private-key-file={pki.serving_key}",
                f"--token-auth-file={self.workdir / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={pki.service_account_pub}",
                f"--service-account-signing-key-file={pki.service_account_key}",
            ],
            self.logs_dir / "kube-apiserver.log",
        )
        for user, token in self._tokens.items():
            if user in (ADMIN_USER, UNPRIVILEGED_USER):
                path = self.workdir / f"{user}.kubeconfig"
                self._kubeconfigs[user] = write_kubeconfig(
                    path, server=self._server, ca_cert=pki.ca_cert, user=user, token=token
                )
        context = self._client_context()
        admin = self._tokens[ADMIN_USER]
        poll_until(
            lambda: _http_status(f"{self._server}/readyz", token=admin, context=context) == 200,
            timeout=self.start_timeout,
            what="kube-apiserver /readyz",
            watch=[self._etcd, self._apiserver],
        )

    def _stop_processes(self) -> None:
        errors: list[BaseException] = []
        for proc in reversed(list(self.processes())):
            try:
                proc.stop()
            except BaseException as exc:  # keep stopping the others
                errors.append(exc)
        self._etcd = self._apiserver = self._controller_manager = None
        self._scheduler = self._kwok = None
        self._adopted = []
        if errors:
            raise errors[0]


@contextlib.contextmanager
def running_control_plane(
    binaries: Binaries, *, controllers: bool = False
) -> Iterator[ControlPlane]:
    """Convenience for scripts: a started control plane, always stopped afterwards."""
    with ControlPlane(binaries) as plane:
        if controllers:
            plane.start_controller_manager()
        yield plane
