"""The process kubelet: runs the pods of the pod tier's fake nodes as real processes.

kwok marks pods Running on its fake nodes but runs nothing. This program
watches every pod bound to the nodes it is given and, for those whose image
is a Bananas image (:data:`IMAGES`), does what a kubelet's container runtime
would, with a local process in place of a container:

* **start**: once kwok's ``bananas-container-started`` stage has marked the
  container running, it resolves the container's environment like the kubelet
  (``value``, ``valueFrom`` secretKeyRef / configMapKeyRef / fieldRef,
  ``envFrom``, ``$(VAR)`` expansion), asks the TokenRequest API for a token of
  the pod's own ServiceAccount bound to the pod, writes a kubeconfig with it
  and points ``KUBECONFIG`` at it (so a scheduler or operator process runs
  under the RBAC the chart and operator ship), and starts ``command`` +
  ``args`` (or the image's entrypoint) with the repository's Python. The
  working directory is a private directory per pod; ``PYTHONPATH`` is the
  "image's" app directory (``--app-path``), ``HOME`` and ``TMPDIR`` are inside
  the pod directory.
* **ports**: every ``containerPort`` gets a free loopback port of its own.
  Environment values that carry a port are rewritten to it: a variable named
  ``*_PORT`` whose value is a declared containerPort (``METRICS_PORT``), and
  an ``http(s)://`` URL whose port is one (``LIVENESS_ENDPOINT``). Probes
  aimed at a containerPort (by name or number) go to the rewritten port.
* **readiness**: the container's ``readinessProbe`` (HTTP GET) is polled every
  ``min(periodSeconds, 1)`` seconds; the first success makes the container
  ready, ``failureThreshold`` failures in a row make it unready; without a
  readiness probe a started container is ready. Each change is written to the
  pod with a status patch (``Ready`` and ``ContainersReady`` conditions and
  ``containerStatuses[].ready``), as a kubelet's status manager does.
  Liveness and startup probes are not run.
* **crash**: a process that exits while its pod is not being deleted is
  restarted (``restartPolicy: Always``) after a back-off of 1, 2, 4 ... 10 s,
  with ``restartCount`` and ``lastState`` updated.
* **deletion**: when the pod gets a ``deletionTimestamp``, the process gets
  SIGTERM at once and SIGKILL when ``deletionGracePeriodSeconds`` have passed;
  once it has exited the pod is removed with a delete of grace 0 (uid
  precondition), which is what a kubelet does after its containers stopped.

Everything it does is logged to stdout and, one JSON object a line, to
``<workdir>/events.jsonl`` (``started``, ``ready``, ``unready``, ``sigterm``,
``sigkill``, ``exited``, ``removed``, ``crashed``, ``start-failed``), which
tests read to see which pods were stopped and how.

Pods whose image is not a Bananas image are not touched here: kwok's
``bananas-image-pull-failed`` stage gives them ``ErrImagePull`` (the tier
has no registry and no container runtime; see ``podtier.py``).

Run as ``python -m tests.e2e.process_kubelet --kubeconfig K --workdir D
--node N [--node N2] --app-path P`` from the repository root. SIGTERM or
SIGINT stop it; it SIGKILLs its processes on the way out (and they get
SIGKILL anyway if it dies, through ``setpriv --pdeathsig``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

# Run as ``-m tests.e2e.process_kubelet``: the package import works from the repo root.
from tests.e2e.kubeapi import ApiError, JsonObject, KubeApi

#: Repositories of the images the process kubelet can run, and their entrypoint.
IMAGES: dict[str, list[str]] = {
    "bananas": ["bananas"],
    "bananas-worker": ["bananas"],
    "ghcr.io/bananas-dev/bananas": ["bananas"],
    "bananas-operator": ["python", "-m", "bananas.operator"],
    "ghcr.io/bananas-dev/bananas-operator": ["python", "-m", "bananas.operator"],
}

_PROBE_PERIOD_CAP = 1.0
_TICK = 0.1
_SETPRIV = shutil.which("setpriv")


def image_repository(image: str) -> str:
    """``repo[:tag][@digest]`` without tag and digest."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def runnable_image_regex(repositories: list[str] | None = None) -> str:
    """An RE2/Python regex matching exactly the images this kubelet runs (for kwok's stages)."""
    repos = sorted(repositories if repositories is not None else IMAGES)
    alternatives = "|".join(re.escape(repo) for repo in repos)
    return rf"^(?:{alternatives})(?::[\w][\w.-]*)?(?:@sha256:[0-9a-f]+)?$"


def runnable(image: str) -> bool:
    return re.fullmatch(runnable_image_regex(), image) is not None


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class StartError(Exception):
    """The container cannot be started yet (a kubelet's CreateContainerConfigError)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: known names are replaced, ``$$`` escapes."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _VAR_REF.sub(sub, value)


def _field_ref(pod: JsonObject, path: str) -> str:
    meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": status.get("podIP"),
        "status.hostIP": status.get("hostIP"),
    }
    if path in simple:
        return str(simple[path] or "")
    match = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise StartError("CreateContainerConfigError", f"unsupported fieldRef {path!r}")


@dataclass
class Runtime:
    """One pod's container process and what the kubelet knows about it."""

    namespace: str
    name: str
    uid: str
    container: str
    image: str
    directory: Path
    proc: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    ports: dict[int, int] = field(default_factory=dict)
    probe: tuple[str, int, float, int] | None = None  # path, host port, period, failures
    ready: bool = False
    failures: int = 0
    next_probe: float = 0.0
    started_at: float = 0.0
    restart_count: int = 0
    restart_at: float | None = None
    terminating_since: float | None = None
    kill_at: float | None = None
    killed: bool = False
    removed: bool = False
    start_retry_at: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class ProcessKubelet:
    """See the module docstring."""

    def __init__(
        self,
        api: KubeApi,
        workdir: Path,
        nodes: list[str],
        app_path: Path,
        python: str = sys.executable,
    ) -> None:
        self.api = api
        self.workdir = workdir
        self.nodes = set(nodes)
        self.app_path = app_path
        self.python = python
        self.pods: dict[str, JsonObject] = {}
        self.runtimes: dict[str, Runtime] = {}
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.stopping = threading.Event()
        self._event_log = (workdir / "events.jsonl").open("a", buffering=1)

    # -- bookkeeping ---------------------------------------------------------

    def record(self, event: str, runtime: Runtime | None = None, **details: Any) -> None:
        entry: dict[str, Any] = {"t": round(time.time(), 3), "event": event}
        if runtime is not None:
            entry |= {"namespace": runtime.namespace, "pod": runtime.name, "uid": runtime.uid}
        entry |= details
        line = json.dumps(entry, sort_keys=True)
        self._event_log.write(line + "\n")
        print(line, flush=True)

    # -- watching ------------------------------------------------------------

    def _watch_forever(self) -> None:
        """List, then watch; relist when the watch is gone. Runs in a thread."""
        while not self.stopping.is_set():
            try:
                listing = self.api.get("/api/v1/pods")
                self.events.put(("RELIST", listing["items"]))
                version = listing["metadata"]["resourceVersion"]
                while not self.stopping.is_set():
                    for event in self.api.watch("/api/v1/pods", version, timeout_seconds=30):
                        obj = event["object"]
                        if event["type"] == "ERROR":
                            raise ApiError(int(obj.get("code", 500)), str(obj), "WATCH", "pods")
                        version = obj["metadata"]["resourceVersion"]
                        if event["type"] != "BOOKMARK":
                            self.events.put((event["type"], obj))
            except (ApiError, OSError, ValueError) as exc:
                if not self.stopping.is_set():
                    print(f"watch: {exc!r}; relisting", flush=True)
                    self.stopping.wait(0.5)

    def _handle(self, kind: str, payload: Any) -> None:
        if kind == "RELIST":
            seen = {}
            for pod in payload:
                seen[pod["metadata"]["uid"]] = pod
            for uid in list(self.pods):
                if uid not in seen:
                    self._gone(uid)
            self.pods.update(seen)
            for uid in seen:
                self._reconcile(uid)
            return
        uid = payload["metadata"]["uid"]
        if kind == "DELETED":
            self._gone(uid)
            return
        self.pods[uid] = payload
        self._reconcile(uid)

    def _gone(self, uid: str) -> None:
        """The pod object is gone: whatever still runs for it is killed at once."""
        self.pods.pop(uid, None)
        runtime = self.runtimes.pop(uid, None)
        if runtime is not None and runtime.running():
            assert runtime.proc is not None
            runtime.proc.kill()
            runtime.proc.wait()
            self.record("sigkill", runtime, why="pod object deleted")
        if runtime is not None and runtime.log is not None:
            runtime.log.close()

    # -- pod lifecycle -------------------------------------------------------

    def _ours(self, pod: JsonObject) -> bool:
        containers = pod["spec"].get("containers") or []
        return (
            pod["spec"].get("nodeName") in self.nodes
            and bool(containers)
            and all(runnable(c.get("image", "")) for c in containers)
        )

    def _reconcile(self, uid: str) -> None:
        pod = self.pods.get(uid)
        if pod is None or not self._ours(pod):
            return
        runtime = self.runtimes.get(uid)
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            if runtime is None or not runtime.running():
                self._remove(pod, runtime)
            elif runtime.terminating_since is None:
                grace = meta.get("deletionGracePeriodSeconds")
                if grace is None:
                    grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
                self._terminate(runtime, float(grace))
            return
        if runtime is None and self._container_started(pod):
            runtime = self._new_runtime(pod)
            self.runtimes[uid] = runtime
            self._start(runtime)

    @staticmethod
    def _container_started(pod: JsonObject) -> bool:
        status = pod.get("status") or {}
        statuses = status.get("containerStatuses") or []
        return status.get("phase") == "Running" and all(
            "running" in (cs.get("state") or {}) for cs in statuses
        )

    def _new_runtime(self, pod: JsonObject) -> Runtime:
        meta = pod["metadata"]
        container = pod["spec"]["containers"][0]
        directory = self.workdir / "pods" / f"{meta['namespace']}_{meta['name']}_{meta['uid'][:8]}"
        (directory / "tmp").mkdir(parents=True, exist_ok=True)
        return Runtime(
            namespace=meta["namespace"],
            name=meta["name"],
            uid=meta["uid"],
            container=container["name"],
            image=container["image"],
            directory=directory,
        )

    def _start(self, runtime: Runtime) -> None:
        pod = self.pods.get(runtime.uid)
        if pod is None:
            return
        container = pod["spec"]["containers"][0]
        try:
            env = self._environment(pod, container)
            runtime.ports = {
                int(p["containerPort"]): free_port() for p in container.get("ports") or []
            }
            env = self._rewrite_ports(env, runtime.ports)
            if kubeconfig := self._service_account_kubeconfig(pod, runtime):
                env["KUBECONFIG"] = str(kubeconfig)
            argv = self._argv(container, env)
        except StartError as exc:
            runtime.start_retry_at = time.monotonic() + 2.0
            self.record("start-failed", runtime, reason=exc.reason, message=exc.message)
            self._patch_waiting(pod, runtime, exc.reason, exc.message)
            return
        runtime.probe = self._readiness_probe(container, runtime.ports)
        base = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(self.app_path),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "LANG": "C.UTF-8",
            "HOME": str(runtime.directory),
            "TMPDIR": str(runtime.directory / "tmp"),
            "HOSTNAME": runtime.name,
        }
        if runtime.log is None:
            runtime.log = (runtime.directory / f"{runtime.container}.log").open("ab")
        prefix = [_SETPRIV, "--pdeathsig", "KILL", "--"] if _SETPRIV else []
        runtime.proc = subprocess.Popen(
            [*prefix, *argv],
            env={**base, **env},
            cwd=runtime.directory,
            stdin=subprocess.DEVNULL,
            stdout=runtime.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        runtime.started_at = time.monotonic()
        runtime.ready = False
        runtime.failures = 0
        runtime.next_probe = time.monotonic()
        runtime.restart_at = None
        self.record(
            "started",
            runtime,
            pid=runtime.proc.pid,
            argv=argv,
            ports={str(k): v for k, v in runtime.ports.items()},
            restart_count=runtime.restart_count,
            service_account=pod["spec"].get("serviceAccountName") or "default",
        )
        if runtime.probe is None:
            self._set_ready(runtime, True)
        elif runtime.restart_count:
            self._patch_container(
                runtime, ready=False, state={"running": {"startedAt": now_rfc3339()}}
            )

    def _terminate(self, runtime: Runtime, grace: float) -> None:
        assert runtime.proc is not None
        runtime.terminating_since = time.monotonic()
        runtime.kill_at = runtime.terminating_since + grace
        with contextlib.suppress(ProcessLookupError):
            runtime.proc.send_signal(signal.SIGTERM)
        self.record("sigterm", runtime, grace_seconds=grace)

    def _remove(self, pod: JsonObject, runtime: Runtime | None) -> None:
        if runtime is not None and runtime.removed:
            return
        meta = pod["metadata"]
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
        body = {"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}}
        try:
            self.api.delete(path, body)
        except ApiError as exc:
            if exc.status not in (404, 409):
                print(f"remove {meta['namespace']}/{meta['name']}: {exc}", flush=True)
                return
        if runtime is not None:
            runtime.removed = True
            waited = None
            if runtime.terminating_since is not None:
                waited = round(time.monotonic() - runtime.terminating_since, 2)
            self.record("removed", runtime, after_sigterm_seconds=waited, killed=runtime.killed)
        else:
            print(f"removed {meta['namespace']}/{meta['name']} (never started)", flush=True)

    # -- the periodic part -----------------------------------------------------

    def tick(self) -> None:
        now = time.monotonic()
        for uid, runtime in list(self.runtimes.items()):
            pod = self.pods.get(uid)
            if runtime.proc is None:
                if pod is not None and not pod["metadata"].get("deletionTimestamp"):
                    if now >= runtime.start_retry_at:
                        self._start(runtime)
                elif pod is not None:
                    self._remove(pod, runtime)
                continue
            code = runtime.proc.poll()
            if code is not None:
                self._exited(runtime, pod, code, now)
                continue
            if runtime.kill_at is not None and now >= runtime.kill_at and not runtime.killed:
                runtime.proc.kill()
                runtime.killed = True
                self.record("sigkill", runtime, why="grace period over")
                continue
            if runtime.probe is not None and now >= runtime.next_probe:
                self._probe(runtime)

    def _exited(self, runtime: Runtime, pod: JsonObject | None, code: int, now: float) -> None:
        if (
            runtime.terminating_since is not None
            or pod is None
            or pod["metadata"].get("deletionTimestamp")
        ):
            if not runtime.removed:
                took = round(now - (runtime.terminating_since or now), 2)
                self.record("exited", runtime, code=code, after_sigterm_seconds=took)
                if pod is not None:
                    self._remove(pod, runtime)
                else:
                    runtime.removed = True
            return
        if runtime.restart_at is None:
            backoff = min(10.0, 2.0**runtime.restart_count)
            runtime.restart_at = now + backoff
            runtime.ready = False
            self.record("crashed", runtime, code=code, restart_in=backoff)
            self._patch_container(
                runtime,
                ready=False,
                state={"waiting": {"reason": "CrashLoopBackOff"}},
                last_state={"terminated": {"exitCode": code, "finishedAt": now_rfc3339()}},
                restart_count=runtime.restart_count + 1,
            )
        elif now >= runtime.restart_at:
            runtime.restart_count += 1
            runtime.proc = None
            self._start(runtime)

    def _probe(self, runtime: Runtime) -> None:
        assert runtime.probe is not None
        path, port, period, threshold = runtime.probe
        runtime.next_probe = time.monotonic() + period
        ok = False
        try:
            url = f"http://127.0.0.1:{port}{path}"
            with urllib.request.urlopen(url, timeout=1) as response:
                ok = 200 <= response.status < 400
        except (urllib.error.URLError, OSError, ValueError):
            ok = False
        if ok:
            runtime.failures = 0
            if not runtime.ready:
                self._set_ready(runtime, True)
        else:
            runtime.failures += 1
            if runtime.ready and runtime.failures >= threshold:
                self._set_ready(runtime, False)

    # -- pod status ------------------------------------------------------------

    def _set_ready(self, runtime: Runtime, ready: bool) -> None:
        runtime.ready = ready
        self.record("ready" if ready else "unready", runtime)
        self._patch_container(runtime, ready=ready)

    def _patch_container(
        self,
        runtime: Runtime,
        *,
        ready: bool,
        state: JsonObject | None = None,
        last_state: JsonObject | None = None,
        restart_count: int | None = None,
    ) -> None:
        pod = self.pods.get(runtime.uid)
        if pod is None or runtime.removed:
            return
        statuses = []
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            cs = dict(cs)
            if cs.get("name") == runtime.container:
                cs["ready"] = ready
                cs["started"] = True
                if state is not None:
                    cs["state"] = state
                if last_state is not None:
                    cs["lastState"] = last_state
                cs["restartCount"] = (
                    restart_count if restart_count is not None else runtime.restart_count
                )
            statuses.append(cs)
        now = now_rfc3339()
        reason = None if ready else "ContainersNotReady"
        message = None if ready else f"containers with unready status: [{runtime.container}]"
        conditions = [
            {
                "type": kind,
                "status": "True" if ready else "False",
                "lastTransitionTime": now,
                "reason": reason,
                "message": message,
            }
            for kind in ("Ready", "ContainersReady")
        ]
        self._patch_status(runtime, {"conditions": conditions, "containerStatuses": statuses})

    def _patch_waiting(self, pod: JsonObject, runtime: Runtime, reason: str, message: str) -> None:
        self._patch_container(
            runtime, ready=False, state={"waiting": {"reason": reason, "message": message}}
        )

    def _patch_status(self, runtime: Runtime, status: JsonObject) -> None:
        path = f"/api/v1/namespaces/{runtime.namespace}/pods/{runtime.name}/status"
        try:
            patched = self.api.patch(path, {"metadata": {"uid": runtime.uid}, "status": status})
        except ApiError as exc:
            if exc.status not in (404, 409, 422):
                print(f"status of {runtime.key}: {exc}", flush=True)
            return
        if patched.get("metadata", {}).get("uid") == runtime.uid:
            self.pods[runtime.uid] = patched

    # -- building the process --------------------------------------------------

    def _lookup(self, kind: str, namespace: str, name: str, key: str, optional: bool) -> str | None:
        data = self._object_data(kind, namespace, name, optional)
        if data is None:
            return None
        if key not in data:
            if optional:
                return None
            raise StartError(
                "CreateContainerConfigError",
                f"couldn't find key {key} in {kind} {namespace}/{name}",
            )
        return data[key]

    def _object_data(
        self, kind: str, namespace: str, name: str, optional: bool
    ) -> dict[str, str] | None:
        plural = "secrets" if kind == "Secret" else "configmaps"
        try:
            obj = self.api.get(f"/api/v1/namespaces/{namespace}/{plural}/{name}")
        except ApiError as exc:
            if exc.status == 404:
                if optional:
                    return None
                raise StartError(
                    "CreateContainerConfigError", f'{kind.lower()} "{name}" not found'
                ) from None
            raise
        if kind == "Secret":
            import base64

            return {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
        return dict(obj.get("data") or {})

    def _environment(self, pod: JsonObject, container: JsonObject) -> dict[str, str]:
        namespace = pod["metadata"]["namespace"]
        env: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            for kind, ref_key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                if ref := source.get(ref_key):
                    data = self._object_data(
                        kind, namespace, ref["name"], ref.get("optional", False)
                    )
                    for key, value in (data or {}).items():
                        env[prefix + key] = value
        for item in container.get("env") or []:
            name = item["name"]
            if "value" in item:
                env[name] = expand(str(item["value"]), env)
            elif source := item.get("valueFrom"):
                value: str | None
                if ref := source.get("secretKeyRef"):
                    value = self._lookup(
                        "Secret", namespace, ref["name"], ref["key"], ref.get("optional", False)
                    )
                elif ref := source.get("configMapKeyRef"):
                    value = self._lookup(
                        "ConfigMap", namespace, ref["name"], ref["key"], ref.get("optional", False)
                    )
                elif ref := source.get("fieldRef"):
                    value = _field_ref(pod, ref["fieldPath"])
                else:
                    value = ""  # resourceFieldRef: no cgroup limits here
                if value is not None:
                    env[name] = value
            else:
                env[name] = ""
        return env

    @staticmethod
    def _rewrite_ports(env: dict[str, str], ports: dict[int, int]) -> dict[str, str]:
        def url_port(value: str) -> str:
            parsed = urllib.parse.urlsplit(value)
            if parsed.port in ports:
                netloc = f"{parsed.hostname}:{ports[parsed.port]}"
                return urllib.parse.urlunsplit(parsed._replace(netloc=netloc))
            return value

        rewritten = {}
        for name, value in env.items():
            if name.endswith("_PORT") and value.isdigit() and int(value) in ports:
                value = str(ports[int(value)])
            elif value.startswith(("http://", "https://")):
                with contextlib.suppress(ValueError):
                    value = url_port(value)
            rewritten[name] = value
        return rewritten

    def _service_account_kubeconfig(self, pod: JsonObject, runtime: Runtime) -> Path | None:
        spec, meta = pod["spec"], pod["metadata"]
        if spec.get("automountServiceAccountToken") is False:
            return None
        account = spec.get("serviceAccountName") or "default"
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "expirationSeconds": 3600,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
            },
        }
        path = f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{account}/token"
        try:
            token = self.api.create(path, body)["status"]["token"]
        except ApiError as exc:
            raise StartError("CreateContainerConfigError", f"token of {account}: {exc}") from None
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "in-cluster",
                    "cluster": {
                        "server": self.api.server,
                        "certificate-authority-data": self.api_ca_data,
                    },
                }
            ],
            "users": [{"name": account, "user": {"token": token}}],
            "contexts": [
                {
                    "name": "in-cluster",
                    "context": {
                        "cluster": "in-cluster",
                        "user": account,
                        "namespace": meta["namespace"],
                    },
                }
            ],
            "current-context": "in-cluster",
        }
        kubeconfig = runtime.directory / "serviceaccount.kubeconfig"
        kubeconfig.write_text(json.dumps(config))
        kubeconfig.chmod(0o600)
        return kubeconfig

    api_ca_data: str = ""

    def _argv(self, container: JsonObject, env: dict[str, str]) -> list[str]:
        command = list(container.get("command") or IMAGES[image_repository(container["image"])])
        args = list(container.get("args") or [])
        argv = [expand(str(part), env) for part in command + args]
        bindir = Path(self.python).parent
        if argv[0] in ("python", "python3"):
            argv[0] = self.python
        elif (bindir / argv[0]).is_file():
            argv[0] = str(bindir / argv[0])
        elif shutil.which(argv[0]) is None:
            raise StartError("RunContainerError", f"executable {argv[0]!r} not found")
        return argv

    @staticmethod
    def _readiness_probe(
        container: JsonObject, ports: dict[int, int]
    ) -> tuple[str, int, float, int] | None:
        probe = container.get("readinessProbe")
        if not probe or "httpGet" not in probe:
            return None
        get = probe["httpGet"]
        port = get.get("port")
        if isinstance(port, str) and not port.isdigit():
            named = {p.get("name"): int(p["containerPort"]) for p in container.get("ports") or []}
            port = named.get(port)
        if port is None or int(port) not in ports:
            return None
        period = min(float(probe.get("periodSeconds", 10)), _PROBE_PERIOD_CAP)
        return get.get("path", "/"), ports[int(port)], period, int(probe.get("failureThreshold", 3))

    # -- main loop ---------------------------------------------------------------

    def run(self, ready_file: Path) -> None:
        watcher = threading.Thread(target=self._watch_forever, name="watch", daemon=True)
        watcher.start()
        first = True
        while not self.stopping.is_set():
            try:
                kind, payload = self.events.get(timeout=_TICK)
                self._handle(kind, payload)
                if first and kind == "RELIST":
                    ready_file.write_text("ready\n")
                    first = False
            except queue.Empty:
                pass
            self.tick()
        self.shutdown()

    def shutdown(self) -> None:
        for runtime in self.runtimes.values():
            if runtime.running():
                assert runtime.proc is not None
                runtime.proc.kill()
                runtime.proc.wait()
            if runtime.log is not None:
                runtime.log.close()
        self._event_log.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="process_kubelet", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--node", action="append", required=True, dest="nodes")
    parser.add_argument("--app-path", type=Path, required=True)
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    api = KubeApi(args.kubeconfig)
    kubelet = ProcessKubelet(api, args.workdir, args.nodes, args.app_path)
    config = json.loads(args.kubeconfig.read_text())
    kubelet.api_ca_data = config["clusters"][0]["cluster"].get("certificate-authority-data", "")

    def stop(signum: int, frame: object) -> None:
        kubelet.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    kubelet.run(args.workdir / "ready")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
