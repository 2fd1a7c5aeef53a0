"""The frozen metric list of docs/metrics.md, as the tests read it."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).parents[2] / "docs" / "metrics.md"
Table = dict[str, tuple[str, frozenset[str]]]


def documented() -> dict[str, Table]:
    """Each ``<!-- metrics: NAME -->`` table of the doc: metric -> (type, labels)."""
    text = DOC.read_text()
    tables: dict[str, Table] = {}
    for name, body in re.findall(r"<!-- metrics: (\w+) -->\n(.*?)<!-- /metrics -->", text, re.S):
        table: Table = {}
        for row in body.splitlines():
            cells = [c.strip() for c in row.strip().strip("|").split("|")]
            if len(cells) < 3 or not cells[0].startswith("`"):
                continue
            labels = frozenset(re.findall(r"`(\w+)`", cells[2]))
            table[cells[0].strip("`")] = (cells[1], labels)
        tables[name] = table
    return tables
