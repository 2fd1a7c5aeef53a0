"""The Bananas web dashboard (``pip install 'bananas-queue[dashboard]'``).

:func:`create_app` builds an ASGI app (Starlette) that serves queues, jobs, workers,
schedules and an audit log from Redis alone; ``bananas dashboard`` runs it with
uvicorn. See ``docs/dashboard.md``.

This module imports no web framework itself, so ``bananas`` (and its CLI) work without
the extra; the framework is imported when an app is built.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from bananas.dashboard.settings import AuthMode, BasicUser, DashboardSettings, Role

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from bananas.client import AsyncClient

__all__ = ["AuthMode", "BasicUser", "DashboardSettings", "Role", "create_app"]


def create_app(
    settings: DashboardSettings | None = None,
    *,
    client: AsyncClient | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The dashboard as an ASGI app; see :func:`bananas.dashboard.app.create_app`.

    Raises :class:`bananas.ConfigError` for settings that cannot work, ImportError
    without the ``dashboard`` extra.
    """
    from bananas.dashboard.app import create_app as build

    return build(settings, client=client, clock=clock)
