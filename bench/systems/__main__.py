"""Adapter runner: ``python -m bench.systems <system> <role> [<spec-json>]``.

Roles: ``info`` (versions), ``worker`` (consume until SIGTERM), ``client``
(one submission loop from :mod:`bench.systems._client`, then exit). Events go
to the original standard output (see :mod:`bench.protocol`); everything else
the libraries print goes to standard error, which the driver logs to a file.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import platform
import sys
import traceback
from types import ModuleType

from bench.protocol import EventStream, decode_client_spec, decode_worker_spec
from bench.systems import _probe
from bench.systems._client import run_client


def versions(module: ModuleType) -> dict[str, str]:
    """Return the installed versions of the adapter's packages and Python."""
    found = {"python": platform.python_version()}
    for name in getattr(module, "PACKAGES", ()):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _run(events: EventStream, system: str, role: str, spec_text: str) -> None:
    module = importlib.import_module(f"bench.systems.{system}")
    if role == "info":
        events.emit("info", system=system, versions=versions(module))
    elif role == "worker":
        spec = decode_worker_spec(spec_text)
        probe = _probe.Probe(spec, events, versions(module))
        _probe.install(probe)
        module.run_worker(spec, probe)
    elif role == "client":
        client_spec = decode_client_spec(spec_text)
        result = asyncio.run(run_client(module.make_client(client_spec), client_spec))
        events.emit("result", **result)
    else:
        raise ValueError(f"unknown role {role!r}")


def main(argv: list[str]) -> int:
    """Run one role; returns the exit status."""
    events = EventStream.take_stdout()
    if len(argv) < 3:
        events.emit("error", message="usage: python -m bench.systems SYSTEM ROLE [SPEC]")
        return 2
    try:
        _run(events, argv[1], argv[2], argv[3] if len(argv) > 3 else "{}")
    except Exception as exc:
        traceback.print_exc()
        events.emit("error", message=f"{type(exc).__name__}: {exc}")
        return 1
    return 0


raise SystemExit(main(sys.argv))
