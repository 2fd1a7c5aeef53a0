"""The typed specs agree with the CRD schemas, and refuse what the schemas refuse."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bananas.models import Priority
from bananas.operator.specs import SpecError, parse_cronschedule, parse_workerpool

ROOT = Path(__file__).resolve().parents[3]


def crd_spec_schema(name: str) -> dict[str, Any]:
    crd = yaml.safe_load((ROOT / "crds" / name).read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema["properties"]["spec"]


Path_ = tuple[str, ...]


def defaults(schema: dict[str, Any], path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    for key, prop in schema.get("properties", {}).items():
        here = (*path, key)
        if "default" in prop and prop["default"] != {}:
            yield here, prop["default"]
        if "default" in prop or prop.get("type") != "object":
            yield from defaults(prop, here)  # an optional object without a default is absent


def lookup(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


@pytest.mark.parametrize(
    ("crd", "parse", "minimal"),
    [
        ("workerpools.yaml", parse_workerpool, {"image": "i", "app": "a"}),
        ("cronschedules.yaml", parse_cronschedule, {"schedule": "@daily", "job": "j"}),
    ],
)
def test_model_defaults_match_the_crd(crd: str, parse: Any, minimal: dict[str, Any]) -> None:
    dumped = parse(minimal).model_dump(by_alias=True, mode="json")
    found = list(defaults(crd_spec_schema(crd)))
    assert found, "the CRD declares defaults"
    for path, default in found:
        assert lookup(dumped, path) == default, ".".join(path)


def test_routing_key_pattern_matches_the_sdk_rule() -> None:
    schema = crd_spec_schema("workerpools.yaml")
    pattern = schema["properties"]["routingKeys"]["items"]["pattern"]
    assert pattern == "^[A-Za-z0-9_-]{1,64}$"
    assert crd_spec_schema("cronschedules.yaml")["properties"]["routingKey"]["pattern"] == pattern


def test_priority_enums_match_the_sdk() -> None:
    wp = crd_spec_schema("workerpools.yaml")["properties"]["priorities"]["items"]["enum"]
    cs = crd_spec_schema("cronschedules.yaml")["properties"]["priority"]["enum"]
    assert wp == cs == [p.value for p in Priority]


@pytest.mark.parametrize(
    ("schedule", "ok"),
    [
        ("0 3 * * *", True),
        ("*/15 9-17 * * MON-FRI", True),
        ("0 0 1,15 * *", True),
        ("@hourly", True),
        ("  0 3 * * *  ", True),
        ("0 3 * *", False),
        ("0 3 * * * *", False),
        ("@fortnightly", False),
        ("0 3 * * * ; rm -rf", False),
        ("", False),
    ],
)
def test_cron_pattern(schedule: str, ok: bool) -> None:
    pattern = crd_spec_schema("cronschedules.yaml")["properties"]["schedule"]["pattern"]
    assert bool(re.match(pattern, schedule)) is ok


def test_min_above_max_is_refused() -> None:
    with pytest.raises(SpecError, match="minReplicas must not be greater than maxReplicas"):
        parse_workerpool(
            {"image": "i", "app": "a", "autoscaling": {"minReplicas": 5, "maxReplicas": 2}}
        )


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"image": "i", "app": "a", "routingKeys": ["bad key"]}, "routingKeys.0"),
        ({"image": "i", "app": "a", "priorities": ["urgent"]}, "priorities.0"),
        ({"image": "i", "app": "a", "concurrency": 0}, "concurrency"),
        ({"image": "i", "app": "a", "routingKeys": []}, "routingKeys"),
        ({"app": "a"}, "image"),
    ],
)
def test_workerpool_errors_name_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError, match=re.escape(field)):
        parse_workerpool(spec)


def test_cronschedule_errors_name_the_field() -> None:
    with pytest.raises(SpecError, match="routingKey"):
        parse_cronschedule({"schedule": "@daily", "job": "j", "routingKey": "no spaces"})
    with pytest.raises(SpecError, match="priority"):
        parse_cronschedule({"schedule": "@daily", "job": "j", "priority": "urgent"})


def test_unknown_fields_are_ignored() -> None:
    spec = parse_workerpool({"image": "i", "app": "a", "fromTheFuture": True})
    assert spec.image == "i"
