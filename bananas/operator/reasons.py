"""Every reason the operator writes: CamelCase, in Events and in status conditions.

One vocabulary, in one place, so ``kubectl get events --field-selector
reason=ScaledDown`` and a condition's ``reason`` mean the same thing wherever
they come from, and a typo is a name error rather than a silent new reason.
The values are part of the operator's interface: dashboards, alerts and the
Argo CD health check match on them, so renaming one is a breaking change.

The kinds of condition themselves (``Ready``, ``RedisReachable``, ...) are
:class:`ConditionType`; the reasons are :class:`Reason`. Both are ``StrEnum``
so they serialise as their plain string.
"""

from __future__ import annotations

import enum


class ConditionType(enum.StrEnum):
    """The ``type`` of a status condition."""

    #: The resource does what this generation of its spec asks, fully rolled out.
    READY = "Ready"
    #: True while this generation is not yet in effect (kstatus: InProgress).
    RECONCILING = "Reconciling"
    #: True while progress needs a change by someone (kstatus: Failed).
    STALLED = "Stalled"
    #: The pool is changing size, or being held by a stabilisation window.
    SCALING = "Scaling"
    #: The operator could read (or write) the resource's Redis.
    REDIS_REACHABLE = "RedisReachable"
    #: The CronSchedule is registered in its Redis.
    REGISTERED = "Registered"
    #: The namespace's scheduler Deployment was applied.
    SCHEDULER_READY = "SchedulerReady"


class Reason(enum.StrEnum):
    """The ``reason`` of an Event or a condition."""

    # -- the spec and the objects rendered from it
    INVALID_SPEC = "InvalidSpec"
    INVALID_POD_TEMPLATE = "InvalidPodTemplate"
    DEPLOYMENT_MISSING = "DeploymentMissing"

    # -- health (Ready, Reconciling, Stalled)
    RECONCILED = "Reconciled"
    HEALTHY = "Healthy"
    STALLED = "Stalled"
    ROLLING_OUT = "RollingOut"
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    SCHEDULER_UNAVAILABLE = "SchedulerUnavailable"

    # -- pods (the stuck-container reasons are the kubelet's own)
    PODS_READY = "PodsReady"
    PODS_NOT_READY = "PodsNotReady"
    SCALED_TO_ZERO = "ScaledToZero"
    UNSCHEDULABLE = "Unschedulable"
    ERR_IMAGE_PULL = "ErrImagePull"
    IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
    INVALID_IMAGE_NAME = "InvalidImageName"
    ERR_IMAGE_NEVER_PULL = "ErrImageNeverPull"
    CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
    CREATE_CONTAINER_ERROR = "CreateContainerError"
    CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"

    # -- the autoscaler
    SCALED_UP = "ScaledUp"
    SCALED_DOWN = "ScaledDown"
    SCALE_TO_ZERO = "ScaleToZero"
    SCALING = "Scaling"
    STABILIZING = "Stabilizing"
    STABLE = "Stable"
    WAITING_FOR_BUSY_PODS = "WaitingForBusyPods"
    PAUSED = "Paused"
    #: Ready jobs wait on paused routing keys (``Client.pause``) and are not counted.
    QUEUE_PAUSED = "QueuePaused"
    FALLBACK = "Fallback"

    # -- Redis and its Secret
    CONNECTED = "Connected"
    NOT_CHECKED = "NotChecked"
    REDIS_REACHABLE = "RedisReachable"
    REDIS_UNREACHABLE = "RedisUnreachable"
    REDIS_ERROR = "RedisError"
    REDIS_SECRET_NOT_FOUND = "RedisSecretNotFound"
    SECRET_UNREADABLE = "SecretUnreadable"
    INVALID_REDIS_URL = "InvalidRedisUrl"

    # -- CronSchedules
    REGISTERED = "Registered"
    UNREGISTERED = "Unregistered"
    UNREGISTER_FAILED = "UnregisterFailed"
    SCHEDULED = "Scheduled"
    SUSPENDED = "Suspended"
    FIRED = "Fired"
    MISSED_SCHEDULE = "MissedSchedule"
    TOO_MANY_MISSED = "TooManyMissed"
    RESUMED = "Resumed"
    FIRE_FAILED = "FireFailed"
    INVALID_TIME_ZONE = "InvalidTimeZone"
    INVALID_SCHEDULE = "InvalidSchedule"

    # -- the scheduler Deployment
    APPLIED = "Applied"
    SCHEDULER_NOT_APPLIED = "SchedulerNotApplied"


#: Reasons that mean "Redis itself misbehaved" (counted in the operator's redis_errors
#: metric), as opposed to a Secret or a URL the user got wrong.
REDIS_SIDE = frozenset({Reason.REDIS_UNREACHABLE, Reason.REDIS_ERROR})
