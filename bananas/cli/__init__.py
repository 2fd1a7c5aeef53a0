"""The ``bananas`` command.

Exit codes scripts can rely on:

- 0: done (for ``result``/``submit --wait``: the job completed);
- 1: the thing asked about is not there or did not succeed (no such job, job failed,
  wait timed out, DLQ entry missing);
- 2: bad usage or configuration (the message names the flag or variable);
- 3: Redis could not be reached;
- 130: interrupted (Ctrl-C); 141: stdout was closed early (``bananas queues | head``).

The subcommands live by what they touch: :mod:`bananas.cli.runtime` runs workers,
schedulers and ``dev``; :mod:`bananas.cli.jobs` handles one job at a time;
:mod:`bananas.cli.admin` looks after queues, the dead-letter queue and schedules;
:mod:`bananas.cli.render` is how all of them print.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version

from bananas.cli import admin, jobs, runtime
from bananas.cli.exits import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
)
from bananas.cli.options import HelpFormatter, add_redis_url
from bananas.errors import BananasConnectionError, BananasError, ConfigError, InvalidJobError

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "build_parser",
    "main",
]

#: The distribution's name on PyPI (``bananas`` there is an unrelated project).
DISTRIBUTION = "bananas-queue"


def _version() -> str:
    try:
        return f"bananas {version(DISTRIBUTION)} ({DISTRIBUTION})"
    except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
        return "bananas (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bananas",
        description="Bananas: a Redis-backed distributed task queue.",
        epilog="Exit codes: 0 ok, 1 not found or failed, 2 usage/config error, "
        "3 Redis unreachable, 130 interrupted.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, fn: Callable[[argparse.Namespace], int], help_text: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name, help=help_text, description=help_text, formatter_class=HelpFormatter
        )
        p.set_defaults(func=fn)
        if name not in ("worker", "scheduler", "dev"):
            add_redis_url(p)
        return p

    runtime.register(add)
    jobs.register(add)
    admin.register(add)
    return parser


def _quiet_broken_pipe() -> int:
    """The reader went away: say nothing, and don't let the exit flush raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_BROKEN_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        code: int = args.func(args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except KeyboardInterrupt:
        print("bananas: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BananasConnectionError as exc:
        print(f"bananas: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except (ConfigError, InvalidJobError, ValueError) as exc:
        print(f"bananas: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BananasError as exc:
        print(f"bananas: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
