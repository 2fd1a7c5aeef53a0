"""Shared builders for the operator's unit tests."""

from __future__ import annotations

from typing import Any

import pytest


def resource(kind: str, name: str = "email", namespace: str = "apps") -> dict[str, Any]:
    """A minimal custom-resource body, as kopf hands it to a handler."""
    return {
        "apiVersion": "bananas.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "generation": 1},
    }


@pytest.fixture
def pool_body() -> dict[str, Any]:
    return resource("WorkerPool")


@pytest.fixture
def cron_body() -> dict[str, Any]:
    return resource("CronSchedule", name="nightly-cleanup")
