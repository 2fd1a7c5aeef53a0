"""The start-up check of Redis' ``maxmemory-policy``: queue state must never be evicted.

Every Bananas key that holds queue state (the per-route ``jobs`` hash, the queue lists,
leases, schedules) is stored without a TTL, and results and wake-up lists with one.
So the policies sort into three kinds (:func:`classify`):

- ``noeviction`` (Redis' default) is **safe**: when memory is full, writes that need
  memory are refused, nothing already stored disappears;
- ``volatile-*`` can evict only keys with a TTL: **results and notifications** may go
  before their TTL, queue state stays (a warning);
- ``allkeys-*`` can evict **anything**, a queue list or the whole ``jobs`` hash of a
  routing key included: jobs that were accepted vanish (refused by default).

Workers and schedulers refuse an ``allkeys-*`` policy unless ``EVICTION_POLICY_CHECK``
says ``warn`` (or ``off``); clients and the operator only warn, since refusing would
take an application down for a setting it does not own. The policy is read from
``INFO memory`` (``maxmemory_policy``), which managed services that disable or rename
CONFIG still answer, and which reveals no secret (``CONFIG GET`` would need
``+config|get``, which also reads the password). Where INFO is not allowed either (an
ACL without ``+info``), the check logs at INFO that it could not look, and Bananas
carries on, the responsibility being the operator's
(``docs/reliability.md#a-full-redis`` has the details).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from typing import Any

import redis
import redis.asyncio as aioredis

from bananas.errors import EvictionPolicyError, RedisOutOfMemoryError

logger = logging.getLogger(__name__)

SAFE_POLICY = "noeviction"
#: The environment variable (and Settings field ``eviction_policy_check``) of the override.
OVERRIDE_VARIABLE = "EVICTION_POLICY_CHECK"


class PolicyRisk(enum.Enum):
    """What a ``maxmemory-policy`` can take away from Bananas."""

    SAFE = "safe"
    RESULTS = "results"  # volatile-*: keys with a TTL (results, notifications)
    QUEUE = "queue"  # allkeys-*: queue state itself
    UNKNOWN = "unknown"  # INFO not allowed, or a policy this version does not know


class CheckMode(enum.Enum):
    """What to do about an evicting policy (``EVICTION_POLICY_CHECK``)."""

    REFUSE = "refuse"  # raise EvictionPolicyError for allkeys-*; warn for volatile-*
    WARN = "warn"  # log a warning for both
    OFF = "off"  # do not look


def classify(policy: str | None) -> PolicyRisk:
    """The risk of ``policy`` (None: it could not be read)."""
    if policy == SAFE_POLICY:
        return PolicyRisk.SAFE
    if policy is None:
        return PolicyRisk.UNKNOWN
    if policy.startswith("volatile-"):
        return PolicyRisk.RESULTS
    if policy.startswith("allkeys-"):
        return PolicyRisk.QUEUE
    return PolicyRisk.UNKNOWN


def _message(policy: str, risk: PolicyRisk, where: str) -> str:
    what = (
        "can evict queue keys: jobs that were accepted would vanish"
        if risk is PolicyRisk.QUEUE
        else "can evict results and notifications before their TTL"
    )
    return (
        f"Redis at {where} has maxmemory-policy {policy}, which {what}. "
        f"Fix: CONFIG SET maxmemory-policy {SAFE_POLICY} (and maxmemory-policy "
        f"{SAFE_POLICY} in redis.conf), or give Bananas a Redis of its own. "
        f"{OVERRIDE_VARIABLE}=warn runs anyway."
    )


def judge(policy: str | None, mode: CheckMode, where: str) -> PolicyRisk:
    """Act on ``policy``: log, or raise :class:`EvictionPolicyError` (``REFUSE`` and
    ``allkeys-*``). Returns the risk."""
    risk = classify(policy)
    if mode is CheckMode.OFF or risk is PolicyRisk.SAFE:
        return risk
    if policy is None:
        logger.info(
            "could not read maxmemory-policy of Redis at %s (INFO not allowed): "
            "make sure it is %s, or queue state may be evicted",
            where,
            SAFE_POLICY,
        )
        return risk
    if risk is PolicyRisk.UNKNOWN:
        logger.warning("Redis at %s has an unknown maxmemory-policy %r", where, policy)
        return risk
    message = _message(policy, risk, where)
    if risk is PolicyRisk.QUEUE and mode is CheckMode.REFUSE:
        raise EvictionPolicyError(message, policy=policy)
    logger.warning("%s", message)
    return risk


def _policy_of(reply: Any) -> str | None:
    """The policy in an INFO memory (``maxmemory_policy``) or CONFIG GET
    (``maxmemory-policy``) reply, or per node for a cluster ({node: {...}}), where the
    worst node's policy is the one that matters."""
    if not isinstance(reply, Mapping):
        return None
    for name in ("maxmemory_policy", "maxmemory-policy"):
        if name in reply:
            return str(reply[name])
    worst: str | None = None
    order = (PolicyRisk.SAFE, PolicyRisk.UNKNOWN, PolicyRisk.RESULTS, PolicyRisk.QUEUE)
    for node_reply in reply.values():
        policy = _policy_of(node_reply)
        if policy is not None and (
            worst is None or order.index(classify(policy)) > order.index(classify(worst))
        ):
            worst = policy
    return worst


def _readable(exc: redis.RedisError) -> bool:
    """Whether a failure of INFO means "not allowed here" (so: carry on unchecked)."""
    text = str(exc).lower()
    return isinstance(exc, redis.ResponseError) and (
        "noperm" in text or "unknown command" in text or "permission" in text
    )


def read_policy(client: Any) -> str | None:
    """``maxmemory-policy`` of a sync redis-py client (from ``INFO memory``, which
    managed services that disable CONFIG still answer); None when it is not allowed.

    Raises redis-py's connection errors as they are (the caller translates them).
    """
    try:
        return _policy_of(client.info("memory"))
    except redis.ResponseError as exc:
        if _readable(exc):
            return None
        raise


async def aread_policy(client: aioredis.Redis | Any) -> str | None:
    """The same for an asyncio redis-py client."""
    try:
        return _policy_of(await client.info("memory"))
    except redis.ResponseError as exc:
        if _readable(exc):
            return None
        raise


def _limit_of(reply: Any) -> int | None:
    if not isinstance(reply, Mapping):
        return None
    if "maxmemory" in reply:
        try:
            return int(reply["maxmemory"])
        except (TypeError, ValueError):
            return None
    limits = [limit for r in reply.values() if (limit := _limit_of(r)) is not None]
    return min(limits) if limits else None


def read_maxmemory(client: Any) -> int | None:
    """Redis' ``maxmemory`` in bytes (0: no limit, from ``INFO memory``); None when
    INFO is not allowed."""
    try:
        return _limit_of(client.info("memory"))
    except redis.ResponseError as exc:
        if _readable(exc):
            return None
        raise


async def aread_maxmemory(client: aioredis.Redis | Any) -> int | None:
    """The same for an asyncio redis-py client."""
    try:
        return _limit_of(await client.info("memory"))
    except redis.ResponseError as exc:
        if _readable(exc):
            return None
        raise


def with_limit(exc: RedisOutOfMemoryError, maxmemory: int | None) -> RedisOutOfMemoryError:
    """``exc`` again, its message naming the limit (when it could be read) and the way out."""
    limit = (
        f"maxmemory {maxmemory} bytes ({maxmemory / 2**20:.1f} MiB)"
        if maxmemory
        else "its maxmemory (INFO not allowed: limit unknown)"
    )
    return RedisOutOfMemoryError(
        f"{exc} -- Redis is full at {limit}; workers can still finish and acknowledge "
        "jobs, which frees memory. Raise maxmemory or drain the queue, then retry.",
        maxmemory=maxmemory,
    )


def parse_mode(text: str) -> CheckMode:
    """``refuse`` / ``warn`` / ``off``; raises ValueError naming the accepted forms."""
    try:
        return CheckMode(text.strip().lower())
    except ValueError:
        forms = ", ".join(m.value for m in CheckMode)
        raise ValueError(f"{OVERRIDE_VARIABLE} must be one of {forms}, got {text!r}") from None
