"""Running the operator: in this process's event loop, or as the container's main.

:func:`run_operator` is the whole operator as one coroutine: it makes the
:class:`~bananas.operator.context.OperatorContext`, runs kopf with the
operator's registry and settings until ``stop_flag`` is set (or the process
gets SIGTERM), and closes the clients. The end-to-end tests run it in a thread
against a throw-away API server; the container runs :func:`main`.

:func:`main` (``python -m bananas.operator``) reads :class:`OperatorConfig`
from the environment, sets up logging (kopf's JSON format when
``LOG_FORMAT=json``), serves the Prometheus metrics, and starts kopf with its
liveness endpoint (the ``--liveness`` of the kopf CLI) for the Deployment's
probes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import kopf

from bananas.errors import BananasError
from bananas.operator.config import OperatorConfig
from bananas.operator.context import OperatorContext
from bananas.operator.kopf_wiring import build_registry, make_settings

logger = logging.getLogger(__name__)


async def run_operator(
    config: OperatorConfig,
    *,
    context: OperatorContext | None = None,
    stop_flag: Any = None,
    ready_flag: Any = None,
    liveness_endpoint: str | None = None,
) -> None:
    """Run the operator until ``stop_flag`` (an asyncio/threading Event or Future) is set.

    Watches ``config.namespaces``, or the whole cluster when there are none.
    Raises :class:`~bananas.operator.kube.KubernetesApiError` without credentials.
    """
    ctx = context or await OperatorContext.create(config)
    try:
        await kopf.operator(
            registry=build_registry(config),
            settings=make_settings(),
            memo=kopf.Memo(ctx=ctx),
            standalone=True,
            clusterwide=not config.namespaces,
            namespaces=list(config.namespaces),
            liveness_endpoint=liveness_endpoint,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
        )
    finally:
        await ctx.close()


def main(argv: Sequence[str] | None = None) -> int:
    """The operator container's entry point; returns the exit code."""
    del argv  # configured by the environment only
    try:
        config = OperatorConfig.from_env()
    except BananasError as exc:
        print(f"bananas-operator: {exc}", file=sys.stderr)
        return 2
    json_logs = os.environ.get("LOG_FORMAT", "").lower() == "json"
    kopf.configure(
        verbose=os.environ.get("LOG_LEVEL", "").upper() == "DEBUG",
        log_format=kopf.LogFormat.JSON if json_logs else kopf.LogFormat.FULL,
    )
    try:
        asyncio.run(_serve(config))
    except BananasError as exc:
        logger.error("bananas-operator stopped: %s", exc)
        return 1
    return 0


async def _serve(config: OperatorConfig) -> None:
    ctx = await OperatorContext.create(config)
    if config.metrics_port:
        ctx.metrics.serve(config.metrics_port)
        logger.info("serving metrics on :%d", config.metrics_port)
    await run_operator(config, context=ctx, liveness_endpoint=config.liveness_endpoint or None)
