"""What the WorkerPool and CronSchedule handlers share: Redis problems, refusals, Events.

Both handler modules reach a Redis named by a Secret and both refuse specs they
cannot act on. Doing either in two places is how two resources end up
reporting one problem under two reasons, so each lives here once:

- :func:`redis_client` and :func:`classify` turn everything that can go wrong
  between a ``spec.redis`` reference and a Redis answer (a missing Secret or
  key, a URL the SDK cannot parse, a Redis that does not answer, a Redis error)
  into one :class:`RedisProblem` with a :class:`~bananas.operator.reasons.Reason`.
- :func:`refuse` reports a spec (or a rendered object) the operator will not
  act on: a log line, a Warning Event and the conditions, for this generation.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import kopf

from bananas.client import AsyncClient
from bananas.errors import BananasConnectionError, BananasError, ConfigError
from bananas.operator.conditions import Condition, merge_conditions
from bananas.operator.context import OperatorContext
from bananas.operator.kube import KubernetesApiError
from bananas.operator.reasons import REDIS_SIDE, Reason
from bananas.operator.specs import RedisRef

logger = logging.getLogger(__name__)


class RedisProblem(Exception):
    """Redis (or its Secret) could not be used; ``reason`` is the condition reason."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


#: What a Redis round of a handler may raise, all of it understood by :func:`classify`.
REDIS_FAILURES: tuple[type[BaseException], ...] = (RedisProblem, BananasError, TimeoutError)


def classify(exc: BaseException) -> RedisProblem:
    """The :class:`RedisProblem` that ``exc`` (from a Secret read or a Redis call) means."""
    if isinstance(exc, RedisProblem):
        return exc
    if isinstance(exc, KubernetesApiError):
        reason = Reason.REDIS_SECRET_NOT_FOUND if exc.not_found else Reason.SECRET_UNREADABLE
        return RedisProblem(reason, exc.message)
    if isinstance(exc, ConfigError):
        return RedisProblem(Reason.INVALID_REDIS_URL, str(exc))
    if isinstance(exc, BananasConnectionError | TimeoutError):
        return RedisProblem(Reason.REDIS_UNREACHABLE, str(exc) or "Redis did not answer in time")
    return RedisProblem(Reason.REDIS_ERROR, str(exc) or type(exc).__name__)


def redis_problem(ctx: OperatorContext, kind: str, exc: BaseException) -> RedisProblem:
    """:func:`classify`, counting the problems of Redis itself in the operator's metrics."""
    problem = classify(exc)
    if problem.reason in REDIS_SIDE:
        ctx.metrics.redis_errors.labels(kind).inc()
    return problem


@asynccontextmanager
async def redis_client(
    ctx: OperatorContext, namespace: str, ref: RedisRef
) -> AsyncIterator[AsyncClient]:
    """``async with redis_client(...) as client``: the SDK client for ``ref``, leased
    for the block (:class:`~bananas.operator.redis_clients.RedisClients`).

    Raises :class:`RedisProblem` for a Secret or URL problem.
    """
    try:
        url = await ctx.redis_url(namespace, ref)
        client = await ctx.redis.acquire(url, ref.prefix)
    except (KubernetesApiError, ConfigError) as exc:
        raise classify(exc) from exc
    try:
        yield client
    except (BananasConnectionError, TimeoutError):
        ctx.forget_url(namespace, ref)  # unreachable: the Secret may point elsewhere by now
        raise
    finally:
        await ctx.redis.release(client)


def ident(body: kopf.Body) -> tuple[str, str]:
    """The resource's namespace and name."""
    return body.metadata.namespace or "", body.metadata.name or ""


def post_event(body: kopf.Body, kind: str, reason: str, message: str) -> None:
    """A Kubernetes Event about the resource; ``kind`` is ``Normal`` or ``Warning``."""
    kopf.event(body, type=kind, reason=str(reason), message=message)


def refuse(
    body: kopf.Body,
    status: Mapping[str, Any],
    patch: kopf.Patch,
    *,
    reason: Reason,
    message: str,
    conditions: Sequence[Condition],
    now: datetime,
    generation: int | None,
) -> None:
    """Report what the operator will not act on: a log line, a Warning Event, the conditions.

    The conditions carry ``generation`` (and so does ``status.observedGeneration``,
    when it is known), so a reader sees that this generation was looked at and refused.
    """
    namespace, name = ident(body)
    logger.warning("%s %s/%s: %s", body.get("kind", "resource"), namespace, name, message)
    post_event(body, "Warning", reason, message)
    patch.status["conditions"] = merge_conditions(
        status.get("conditions"), conditions, now=now, generation=generation
    )
    if generation is not None:
        patch.status["observedGeneration"] = generation


def patch_changed(patch: kopf.Patch, status: Mapping[str, Any], fields: Mapping[str, Any]) -> bool:
    """Put in ``patch.status`` only the ``fields`` whose value differs from ``status``'s;
    True if there was any. A patch with nothing in it is not sent, so a resource that did
    not change costs no status write (a new leader resumes 1,000 of them at once)."""
    changed = False
    for key, value in fields.items():
        if status.get(key) != value:
            patch.status[key] = value
            changed = True
    return changed
