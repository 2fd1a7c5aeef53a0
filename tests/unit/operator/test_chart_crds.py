"""The Helm chart: CRDs generated from crds/ (no drift), and STYLE rule 11's values rules."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "bananas"
SYNC = ROOT / "hack" / "sync-chart-crds.sh"
COMPONENTS = ("operator", "redis", "test")
SHARED_KEYS = {
    "enabled", "image", "imagePullSecrets", "replicaCount", "resources", "nodeSelector",
    "tolerations", "affinity", "priorityClassName", "podAnnotations", "podLabels",
    "podSecurityContext", "securityContext",
}  # fmt: skip


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_chart_crds_match_the_source_crds() -> None:
    result = subprocess.run(
        ["bash", str(SYNC), "--check"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr + result.stdout


def test_chart_crds_keep_annotation_and_toggle() -> None:
    for source in sorted((ROOT / "crds").glob("*s.yaml")):
        text = (CHART / "templates" / "crds" / source.name).read_text()
        assert "{{- if .Values.crds.create }}" in text
        assert "helm.sh/resource-policy: keep" in text
        body = "\n".join(line for line in text.splitlines() if not line.startswith("{{"))
        crd = yaml.safe_load(body)
        assert crd["spec"] == yaml.safe_load(source.read_text())["spec"]


@dataclass
class Key:
    name: str
    indent: int
    commented: bool
    children: list[Key] = field(default_factory=list)

    def documented(self) -> bool:
        return self.commented or (
            bool(self.children) and all(c.documented() for c in self.children)
        )


def parse_values(text: str) -> list[Key]:
    """The keys of values.yaml as a tree, each noting whether a comment precedes it."""
    roots: list[Key] = []
    stack: list[Key] = []
    previous = ""
    for raw in text.splitlines():
        line = raw.rstrip()
        stripped = line.lstrip()
        if not stripped:
            previous = ""
            continue
        if stripped.startswith("#"):
            previous = stripped
            continue
        indent = len(line) - len(stripped)
        if stripped.startswith("- ") or ":" not in stripped:
            previous = ""
            continue  # list items and continuation lines belong to their key
        key = Key(stripped.split(":", 1)[0], indent, previous.startswith("#"))
        while stack and stack[-1].indent >= indent:
            stack.pop()
        (stack[-1].children if stack else roots).append(key)
        stack.append(key)
        previous = ""
    return roots


def test_every_value_has_a_comment() -> None:
    undocumented: list[str] = []

    def walk(keys: list[Key], path: str) -> None:
        for key in keys:
            here = f"{path}.{key.name}" if path else key.name
            if key.commented:
                continue
            if not key.children:
                undocumented.append(here)
            walk(key.children, here)

    walk(parse_values((CHART / "values.yaml").read_text()), "")
    assert undocumented == []


def test_components_share_their_sub_keys() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for component in COMPONENTS:
        missing = SHARED_KEYS - set(values[component])
        assert not missing, f"{component} lacks {sorted(missing)}"
        assert set(values[component]["image"]) == {"repository", "tag", "pullPolicy"}


def test_values_schema_covers_every_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())

    def check(data: object, node: dict[str, object], path: str) -> None:
        if "$ref" in node:
            ref = str(node["$ref"]).rsplit("/", 1)[-1]
            node = schema["definitions"][ref]
        if isinstance(data, dict) and isinstance(node.get("properties"), dict):
            props = node["properties"]
            for key, value in data.items():
                if node.get("additionalProperties") is False:
                    assert key in props, f"{path}.{key} is not in values.schema.json"
                if key in props:
                    check(value, props[key], f"{path}.{key}")

    check(values, schema, "")


def test_restricted_security_contexts_by_default() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for component in COMPONENTS:
        pod = values[component]["podSecurityContext"]
        container = values[component]["securityContext"]
        assert pod["runAsNonRoot"] is True
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        assert container["readOnlyRootFilesystem"] is True
        assert container["allowPrivilegeEscalation"] is False
        assert container["capabilities"] == {"drop": ["ALL"]}


class _StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping (PyYAML keeps the last)."""


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> dict[object, object]:
    seen: set[object] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        assert key not in seen, f"{key!r} given twice at {key_node.start_mark}"
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


@pytest.mark.parametrize("path", sorted((ROOT / "crds").glob("*.yaml")), ids=lambda p: p.name)
def test_no_key_is_given_twice(path: Path) -> None:
    # kubectl and kustomize refuse such a file; PyYAML silently keeps the last value.
    yaml.load(path.read_text(), _StrictLoader)
