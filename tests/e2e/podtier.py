"""The pod tier: kube-scheduler, kwok's fake nodes and the process kubelet.

On top of tier 2 (etcd, kube-apiserver, kube-controller-manager) this starts

* **kube-scheduler** (real, same release as the apiserver), which binds pods
  to nodes by resources, taints, tolerations and selectors;
* **kwok**, managing the two nodes :data:`NODES` creates (annotated
  ``kwok.x-k8s.io/node=fake``): ``kwok-node-0`` (plain) and ``kwok-gpu-0``
  (``nvidia.com/gpu: 2``, label ``nvidia.com/gpu.present=true``, taint
  ``nvidia.com/gpu=present:NoSchedule``). Its Stage configs (:func:`kwok_stages`)
  are kwok's own files from its module, copied by ``hack/controlplane.sh``
  into ``share/kwok/stages``, changed as follows:

  - ``node-initialize`` as shipped; ``node-heartbeat`` every 10 s without
    jitter (shipped: 20-45 s, which can outlast the node controller's grace
    period);
  - ``pod-create`` (pod IP, ``ContainerCreating``) after 100 ms without
    jitter (shipped: 1-6 s);
  - ``pod-delete`` only for pods whose image the process kubelet does not run
    (shipped: every pod without finalizers, at a random time before its
    deletion deadline; the process kubelet removes its own pods);
  - kwok's ``pod-ready`` is replaced by two stages of ours: for a Bananas
    image, ``bananas-container-started`` (phase Running, container running but
    **not ready**; readiness then comes from the process's ``/readyz``, patched
    by the process kubelet); for any other image,
    ``bananas-image-pull-failed`` (container waiting with ``ErrImagePull``,
    phase Pending), because this tier has no registry and no runtime: an
    image it cannot run is an image it cannot pull.

* the **process kubelet** (``process_kubelet.py``) as a child process.

Which images count as Bananas images is one regex
(:func:`tests.e2e.process_kubelet.runnable_image_regex`), used by both the
stages (a jq ``test``) and the process kubelet.
"""

from __future__ import annotations

import copy
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .controlplane import (
    PROCESS_KUBELET_USER,
    REPO_ROOT,
    ControlPlane,
    ControlPlaneError,
    ManagedProcess,
    locate_kwok_stages,
    poll_until,
)
from .kubeapi import ApiError, JsonObject, KubeApi
from .process_kubelet import runnable_image_regex

NODE_ANNOTATION = {"kwok.x-k8s.io/node": "fake"}
GPU_RESOURCE = "nvidia.com/gpu"
GPU_LABEL = "nvidia.com/gpu.present"
GPU_TAINT = {"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}
GPUS_PER_NODE = 2
PLAIN_NODE = "kwok-node-0"
GPU_NODE = "kwok-gpu-0"
#: Where the e2e app module lives, as ``/app`` in the worker image (PYTHONPATH of pods).
APP_PATH = Path(__file__).resolve().parent / "apps"


def _node(name: str, *, gpus: int = 0) -> JsonObject:
    capacity = {"cpu": "32", "memory": "128Gi", "pods": "110"}
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "kwok",
    }
    spec: JsonObject = {}
    if gpus:
        capacity[GPU_RESOURCE] = str(gpus)
        labels[GPU_LABEL] = "true"
        spec["taints"] = [GPU_TAINT]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels, "annotations": dict(NODE_ANNOTATION)},
        "spec": spec,
        "status": {"capacity": capacity, "allocatable": dict(capacity)},
    }


NODES = [_node(PLAIN_NODE), _node(GPU_NODE, gpus=GPUS_PER_NODE)]


def _image_test() -> str:
    """A jq expression: true when every container's image is one the process kubelet runs."""
    return f"[.spec.containers.[].image | test({json.dumps(runnable_image_regex())})] | all"


def _load(stages_dir: Path, relative: str) -> JsonObject:
    stage: JsonObject = yaml.safe_load((stages_dir / relative).read_text())
    return stage


def _fixed_delay(stage: JsonObject, milliseconds: int) -> None:
    stage["spec"]["delay"] = {"durationMilliseconds": milliseconds}


def _pod_stage(name: str, image_runs: bool, status_template: str, event: JsonObject) -> JsonObject:
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": name},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
            "selector": {
                "matchExpressions": [
                    {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
                    {"key": ".status.phase", "operator": "In", "values": ["Pending"]},
                    {"key": ".status.podIP", "operator": "Exists"},
                    {
                        "key": ".status.containerStatuses.[].state.waiting.reason",
                        "operator": "In",
                        "values": ["ContainerCreating"],
                    },
                    {
                        "key": _image_test(),
                        "operator": "In",
                        "values": ["true" if image_runs else "false"],
                    },
                ]
            },
            "delay": {"durationMilliseconds": 100},
            "next": {"event": event, "statusTemplate": status_template},
        },
    }


_STARTED = """\
{{ $now := Now }}
conditions:
- lastProbeTime: null
  lastTransitionTime: {{ $now | Quote }}
  message: 'containers with unready status: [{{ range .spec.containers }}{{ .name }} {{ end }}]'
  reason: ContainersNotReady
  status: "False"
  type: Ready
- lastProbeTime: null
  lastTransitionTime: {{ $now | Quote }}
  message: 'containers with unready status: [{{ range .spec.containers }}{{ .name }} {{ end }}]'
  reason: ContainersNotReady
  status: "False"
  type: ContainersReady
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  imageID: {{ printf "process-kubelet://%s" .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  restartCount: 0
  started: true
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
phase: Running
startTime: {{ $now | Quote }}
"""

_PULL_FAILED = """\
{{ $why := "not found (e2e pod tier: only Bananas images run here)" }}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  restartCount: 0
  started: false
  state:
    waiting:
      reason: ErrImagePull
      message: {{ printf "failed to pull image %q: %s" .image $why | Quote }}
{{ end }}
phase: Pending
"""


def kwok_stages(stages_dir: Path) -> list[JsonObject]:
    """The Stage configs kwok runs with (see the module docstring)."""
    node_init = _load(stages_dir, "node/fast/node-initialize.yaml")
    heartbeat = _load(stages_dir, "node/heartbeat/node-heartbeat.yaml")
    _fixed_delay(heartbeat, 10_000)
    create = _load(stages_dir, "pod/general/pod-create.yaml")
    _fixed_delay(create, 100)
    delete = _load(stages_dir, "pod/general/pod-delete.yaml")
    _fixed_delay(delete, 100)
    delete["spec"]["selector"]["matchExpressions"].append(
        {"key": _image_test(), "operator": "In", "values": ["false"]}
    )
    started = _pod_stage(
        "bananas-container-started",
        True,
        _STARTED,
        {"type": "Normal", "reason": "Started", "message": "Started container (process kubelet)"},
    )
    pull_failed = _pod_stage(
        "bananas-image-pull-failed",
        False,
        _PULL_FAILED,
        {"type": "Warning", "reason": "Failed", "message": "Failed to pull image: ErrImagePull"},
    )
    return [node_init, heartbeat, create, started, pull_failed, delete]


@dataclass
class KubeletEvent:
    """One line of the process kubelet's ``events.jsonl``."""

    raw: dict[str, Any]

    @property
    def event(self) -> str:
        return str(self.raw["event"])

    @property
    def pod(self) -> str:
        return str(self.raw.get("pod", ""))

    @property
    def namespace(self) -> str:
        return str(self.raw.get("namespace", ""))


class PodTier:
    """Starts the pod tier on a running :class:`ControlPlane` (see the module docstring)."""

    def __init__(self, plane: ControlPlane, *, start_timeout: float = 90.0) -> None:
        self.plane = plane
        self.start_timeout = start_timeout
        self.workdir = plane.workdir / "process-kubelet"
        self._kubelet: ManagedProcess | None = None

    @property
    def running(self) -> bool:
        return self._kubelet is not None and self._kubelet.running()

    def start(self) -> None:
        if self.running:
            return
        plane = self.plane
        stages_dir = locate_kwok_stages(plane.binaries.kwok)
        if stages_dir is None:
            raise ControlPlaneError("kwok's Stage configs were not found")
        plane.start_controller_manager()
        plane.start_scheduler()
        config = plane.workdir / "kwok-stages.yaml"
        config.write_text(yaml.safe_dump_all(kwok_stages(stages_dir), sort_keys=False))
        plane.start_kwok(config)
        api = KubeApi(plane.kubeconfig)
        for node in NODES:
            try:
                api.create("/api/v1/nodes", copy.deepcopy(node))
            except ApiError as exc:
                if exc.status != 409:
                    raise
        poll_until(
            lambda: all(self._node_ready(api, n["metadata"]["name"]) for n in NODES),
            timeout=self.start_timeout,
            what="the kwok nodes Ready",
            watch=list(plane.processes()),
        )
        self.workdir.mkdir(parents=True, exist_ok=True)
        # The kubelet's own kubeconfig (a system:masters token; real kubelets use the Node
        # authorizer, which this apiserver does not enable).
        kubeconfig = plane.kubeconfig_for_new_user(PROCESS_KUBELET_USER)
        argv = [sys.executable, "-m", "tests.e2e.process_kubelet"]
        argv += ["--kubeconfig", str(kubeconfig), "--workdir", str(self.workdir)]
        argv += ["--app-path", str(APP_PATH)]
        for node in NODES:
            argv += ["--node", node["metadata"]["name"]]
        self._kubelet = ManagedProcess(
            "process-kubelet", argv, plane.logs_dir / "process-kubelet.log", cwd=REPO_ROOT
        )
        plane.adopt(self._kubelet)
        ready = self.workdir / "ready"
        poll_until(
            ready.exists,
            timeout=self.start_timeout,
            what="the process kubelet's first pod list",
            watch=[*plane.processes()],
        )

    @staticmethod
    def _node_ready(api: KubeApi, name: str) -> bool:
        node = api.get(f"/api/v1/nodes/{name}")
        conditions = (node.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def events(self, namespace: str | None = None) -> list[KubeletEvent]:
        """What the process kubelet did so far (optionally in one namespace)."""
        path = self.workdir / "events.jsonl"
        if not path.exists():
            return []
        found = [KubeletEvent(json.loads(line)) for line in path.read_text().splitlines() if line]
        return [e for e in found if namespace is None or e.namespace == namespace]

    def pod_log(self, namespace: str, pod: str) -> str:
        """The output of a pod's process (all restarts), or '' when it never started."""
        logs = sorted((self.workdir / "pods").glob(f"{namespace}_{pod}_*/*.log"))
        return "".join(path.read_text(errors="replace") for path in logs)
