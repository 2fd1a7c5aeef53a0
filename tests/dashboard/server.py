"""A real dashboard for the tests: uvicorn serving ``create_app`` on a free loopback port.

The server runs in a thread with its own event loop (as ``bananas dashboard`` runs it
in its own process); the tests talk to it over HTTP like a browser does.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

import uvicorn

from bananas.dashboard import DashboardSettings, create_app
from tests.support.ports import free_port
from tests.support.waiting import eventually


@dataclass
class DashboardServer:
    """One running dashboard; ``url`` has no trailing slash."""

    settings: DashboardSettings
    port: int = 0
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None
    errors: list[BaseException] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DashboardServer:
        self.port = free_port()
        app = create_app(self.settings)
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]

        def serve() -> None:
            try:
                asyncio.run(self.server.serve())  # type: ignore[union-attr]
            except BaseException as exc:
                self.errors.append(exc)

        self.thread = threading.Thread(target=serve, name="dashboard", daemon=True)
        self.thread.start()
        eventually(lambda: self.server.started or self.errors, 10, what="dashboard up")  # type: ignore[union-attr]
        if self.errors:
            raise self.errors[0]
        return self

    def stop(self) -> None:
        if self.server is not None:
            # Open event streams are cut after the graceful-shutdown timeout.
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(10)
