"""The kopf wiring: which handler answers which event, and kopf's settings.

Handlers are registered on a registry built by :func:`build_registry` rather
than on kopf's global one at import time, so intervals come from the
:class:`~bananas.operator.config.OperatorConfig` (never from the environment at
import) and a test can run an operator with its own registry beside others.

Settings (:func:`make_settings`), each for a reason:

- kopf keeps its bookkeeping in ``bananas.dev/*`` annotations, not in the
  status, so a status someone edits by hand cannot confuse it, and the status
  schema stays ours.
- The finalizer is ``bananas.dev/finalizer``.
- kopf's own log lines become Kubernetes Events only at ERROR; the operator
  posts its decisions (ScaledUp, Fired, RedisUnreachable, ...) itself.
- Standalone (no kopf peering objects): with several replicas, only the one
  holding the operator's Lease runs kopf at all (:mod:`~bananas.operator.leadership`),
  so two never act at once.
"""

from __future__ import annotations

import logging
from random import Random
from typing import Any

import kopf

from bananas.operator import cron_handlers, pool_handlers
from bananas.operator.config import OperatorConfig
from bananas.operator.context import OperatorContext
from bananas.operator.kube import bearer_token
from bananas.operator.meta import (
    ANNOTATION_PREFIX,
    CRONSCHEDULE_PLURAL,
    FINALIZER,
    GROUP,
    VERSION,
    WORKERPOOL_PLURAL,
)

#: Seconds a stopped autoscaler daemon gets to finish its poll before kopf cancels it.
DAEMON_CANCELLATION_BACKOFF = 5.0
#: Seconds kopf then waits for the cancelled daemon before abandoning it.
DAEMON_CANCELLATION_TIMEOUT = 10.0


async def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    """Give kopf the credentials the operator's own Kubernetes client uses."""
    ctx: OperatorContext = memo["ctx"]
    cfg = ctx.configuration
    if not cfg.host:
        raise kopf.LoginError("the Kubernetes client configuration names no API server")
    header = await bearer_token(cfg)
    scheme: str | None = None
    token: str | None = None
    if header:
        parts = header.split(" ", 1)
        scheme, token = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])
    return kopf.ConnectionInfo(
        server=cfg.host,
        ca_path=cfg.ssl_ca_cert,
        insecure=not cfg.verify_ssl,
        username=cfg.username or None,
        password=cfg.password or None,
        scheme=scheme,
        token=token,
        certificate_path=cfg.cert_file,
        private_key_path=cfg.key_file,
    )


def build_registry(config: OperatorConfig) -> kopf.OperatorRegistry:
    """A registry with every handler of the operator."""
    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry)(login)

    pools = (GROUP, VERSION, WORKERPOOL_PLURAL)
    for on_event in (kopf.on.create, kopf.on.update, kopf.on.resume):
        on_event(*pools, registry=registry, id="reconcile")(pool_handlers.reconcile)
    kopf.daemon(
        *pools,
        registry=registry,
        id="autoscaler",
        cancellation_backoff=DAEMON_CANCELLATION_BACKOFF,
        cancellation_timeout=DAEMON_CANCELLATION_TIMEOUT,
    )(pool_handlers.autoscale)

    crons = (GROUP, VERSION, CRONSCHEDULE_PLURAL)
    for on_event in (kopf.on.create, kopf.on.update, kopf.on.resume):
        on_event(*crons, registry=registry, id="register")(cron_handlers.reconcile)
    kopf.timer(
        *crons,
        registry=registry,
        id="sync",
        interval=config.cron_sync_interval,
        initial_delay=cron_handlers.first_sync_delay(config.cron_sync_interval, Random()),
    )(cron_handlers.sync)
    kopf.on.delete(*crons, registry=registry, id="unregister")(cron_handlers.delete)
    return registry


def make_settings() -> kopf.OperatorSettings:
    """kopf's settings for this operator (see the module docstring)."""
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    settings.posting.level = logging.ERROR
    settings.peering.standalone = True
    settings.peering.mandatory = False
    # Give up a watch after 5 minutes server-side (a little later client-side) and
    # reconnect, so a silently dead connection never leaves the operator blind.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 60.0
    # No settings.queueing.worker_limit: kopf spawns an object's daemons and timers
    # from its worker, so a limit would leave a new leader's autoscalers waiting for
    # the whole fleet's turn (1,000 pools: minutes past a failover).
    return settings
