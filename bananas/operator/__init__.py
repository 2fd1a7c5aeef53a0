"""The Bananas Kubernetes operator (kopf): WorkerPools, CronSchedules, autoscaling.

Where things are:

- ``specs``: typed views of the two custom resources' specs.
- ``workerpool``, ``pool_status``, ``autoscaler``, ``cronschedule``,
  ``scheduler_deployment``, ``pod_env``, ``health`` (Ready, Reconciling,
  Stalled), ``scaledown`` (which pods are busy, deletion costs): pure
  functions, spec in and Kubernetes objects or decisions out, unit-tested
  without a cluster.
- ``reasons``: every CamelCase Event and condition reason; ``conditions``: how
  conditions are merged and looked up.
- ``pool_handlers``, ``cron_handlers``: the kopf handlers, thin glue that reads,
  calls the pure functions and writes; ``handler_support``: what both share
  (Redis problems, refusals, Events).
- ``kube``: the Kubernetes API boundary (server-side apply, Secrets, status).
- ``redis_clients``, ``context``, ``metrics``, ``config``: shared plumbing.
- ``kopf_wiring``: which handler answers which event, and kopf's settings.
- ``runner``: :func:`~bananas.operator.runner.run_operator` and the container's main
  (``python -m bananas.operator``).

The CRDs live in ``crds/`` at the repository root; ``docs/kubernetes.md`` is the
user's guide. The operator imports the SDK but never the worker runtime.
"""

from bananas.operator.config import OperatorConfig, SchedulerSettings

__all__ = ["OperatorConfig", "SchedulerSettings"]
