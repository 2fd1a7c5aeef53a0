"""Pure parts of the ``bananas`` command: its parser, the human formats, dev's port choice."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import pytest

from bananas.cli import build_parser, render
from bananas.errors import ConfigError
from bananas.worker_runtime.dev import DEFAULT_PORT, choose_port


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def test_every_option_of_every_command_has_help() -> None:
    missing = [
        f"{name} {action.option_strings[0]}"
        for name, sub in _subparsers(build_parser()).items()
        for action in sub._actions
        if action.option_strings and not action.help
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "-"),
        (0.0002, "<1ms"),
        (0.25, "250ms"),
        (1.5, "1.5s"),
        (42.4, "42s"),
        (858, "14m18s"),
        (7260, "2h01m"),
        (90000, "1d1h"),
    ],
)
def test_durations_read_like_a_person_writes_them(seconds: float | None, shown: str) -> None:
    assert render.duration(seconds) == shown


def test_times_carry_their_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    moment = datetime(2026, 12, 1, 22, 14, 3, tzinfo=UTC)
    try:
        monkeypatch.setenv("TZ", "UTC")
        time.tzset()
        assert render.when(moment) == "2026-12-01 22:14:03 UTC"
        monkeypatch.setenv("TZ", "Europe/Berlin")
        time.tzset()
        assert render.when(moment) == "2026-12-01 23:14:03 CET"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_status_is_coloured_only_when_asked() -> None:
    from bananas import JobStatus

    assert render.status(JobStatus.FAILED, colour=False) == "failed"
    assert render.status(JobStatus.FAILED, colour=True) == "\033[31mfailed\033[0m"


def test_tables_align_coloured_cells() -> None:
    text = render.table(["A", "B"], [["\033[32mok\033[0m", "x"], ["longer", "y"]])
    lines = text.splitlines()
    assert [
        ln.replace("\033[32m", "").replace("\033[0m", "").index(c)
        for ln, c in zip(lines, "Bxy", strict=True)
    ] == [8, 8, 8]


def test_dev_port_prefers_the_default_and_falls_back() -> None:
    assert choose_port(None, lambda p: True) == DEFAULT_PORT
    assert choose_port(None, lambda p: p != DEFAULT_PORT) == 0  # 0: any free port
    assert choose_port(7000, lambda p: True) == 7000
    assert choose_port(0, lambda p: False) == 0
    with pytest.raises(ConfigError, match="--port 7000"):
        choose_port(7000, lambda p: False)


def test_a_page_says_how_much_there_is() -> None:
    assert render.showing(50, 2003, 0) == "showing 1-50 of 2,003 (--offset 50 for more)"
    assert render.showing(3, 53, 50) == "showing 51-53 of 53"
    assert render.showing(0, 0, 0) == "showing 0 of 0"
    assert render.first_line("ValueError: x\nTraceback ...") == "ValueError: x"
    assert render.first_line("y" * 100, 10) == "yyyyyyy..."
