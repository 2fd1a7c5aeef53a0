"""The Grafana dashboard the chart ships queries only the metrics docs/metrics.md freezes,
with only their labels (plus the target labels Prometheus adds)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.support.metrics_doc import documented

DASHBOARD = Path(__file__).parents[2] / "charts" / "bananas" / "dashboards" / "bananas.json"
#: Labels a query may use besides the metrics' own: the histogram bound and target labels.
EXTRA_LABELS = {"le", "instance", "job", "pod"}
HISTOGRAM_SUFFIX = re.compile(r"_(bucket|sum|count)$")


def queries(dashboard: dict[str, Any]) -> list[str]:
    found = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    found += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return found


def test_every_query_names_documented_metrics_and_labels() -> None:
    frozen = {n: v for table in documented().values() for n, v in table.items()}
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = queries(dashboard)
    assert len(exprs) >= 15
    used: set[str] = set()
    for expr in exprs:
        names = set()
        for token in re.findall(r"\bbananas_[a-z0-9_]+", expr):
            base = HISTOGRAM_SUFFIX.sub("", token)
            name = base if frozen.get(base, ("",))[0] == "histogram" else token
            assert name in frozen, f"{token} in {expr!r} is not in docs/metrics.md"
            names.add(name)
        assert names, f"a query on no bananas metric: {expr!r}"
        allowed = set().union(*(frozen[n][1] for n in names)) | EXTRA_LABELS
        grouped = re.findall(r"\bby \(([^)]*)\)", expr)
        matched = re.findall(r"[{,]\s*([a-z_]+)\s*(?:=~|!=|=)", expr)
        labels = {lb.strip() for g in grouped for lb in g.split(",")} | set(matched)
        labels |= set(re.findall(r"label_values\([^,]+,\s*(\w+)\)", expr))
        assert labels <= allowed, f"{expr!r} uses {labels - allowed}"
        used |= names
    worker = set(documented()["worker"])
    missing = {"bananas_job_queue_wait_seconds", "bananas_worker_busy_slots"} - used
    assert not missing, f"the dashboard leaves out {missing}"
    assert used & worker


def test_panels_have_unique_ids_and_a_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert any(v["type"] == "datasource" for v in dashboard["templating"]["list"])
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
