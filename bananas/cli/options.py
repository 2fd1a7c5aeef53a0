"""What the subcommands share: the help formatter, argument types and the client.

Argument types raise ``argparse.ArgumentTypeError``, so a bad value stops the command
with exit 2 and a one-line message naming the flag, before anything connects to Redis.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from bananas.client import Client
from bananas.config import Settings
from bananas.connection import DEFAULT_URL
from bananas.durations import parse_duration
from bananas.errors import InvalidJobError


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows ``(default: X)`` after an option's help when it has a real default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" not in text
            and "default" not in text  # the help already says it
            and default is not None
            and default is not False
            and default != []
            and default != argparse.SUPPRESS
            and action.option_strings
            and not isinstance(action, argparse._HelpAction | argparse._VersionAction)
        ):
            text += " (default: %(default)s)"
        return text


def duration_arg(text: str) -> float:
    """A Go duration (``30s``, ``5m``, ``1h30m``) or seconds."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_duration_arg(text: str) -> float:
    """Like :func:`duration_arg`, but more than zero."""
    seconds = duration_arg(text)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text!r}")
    return seconds


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def positive_int(text: str) -> int:
    value = non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def time_arg(text: str) -> datetime:
    """An ISO-8601 time (``2026-12-24T09:00``, ``2026-12-24 09:00+01:00``); no zone: local."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO-8601 time: {text!r} (e.g. 2026-12-24T09:00:00+01:00)"
        ) from None
    return moment if moment.tzinfo is not None else moment.astimezone()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_payload(text: str | None, flag: str = "--payload") -> Any:
    """The JSON value of ``--payload``: inline, ``@file.json`` or ``-`` (stdin).

    Raises :class:`InvalidJobError` naming the flag. NaN and Infinity are refused:
    JSON has no such numbers.
    """
    if text is None:
        return None
    source = "inline"
    if text == "-":
        text, source = sys.stdin.read(), "stdin"
    elif text.startswith("@"):
        path = Path(text[1:])
        try:
            text, source = path.read_text("utf-8"), str(path)
        except OSError as exc:
            raise InvalidJobError(f"{flag}: cannot read {path}: {exc.strerror}") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        where = "" if source == "inline" else f" ({source})"
        raise InvalidJobError(f"{flag}{where} is not JSON: {exc}") from None


def add_redis_url(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--redis-url",
        metavar="URL",
        help=f"Redis to talk to (env REDIS_URL, else {DEFAULT_URL}; `bananas dev` prints its own)",
    )


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON, for scripts")


def client(args: argparse.Namespace) -> Client:
    """A client for ``--redis-url`` (else ``REDIS_URL``) with the environment's prefix."""
    settings = Settings.from_env()
    return Client(
        args.redis_url or settings.redis_url, prefix=settings.prefix, **settings.redis_options
    )
