"""The process kubelet's rules, without a cluster: which images run, ports, ``$(VAR)``."""

from __future__ import annotations

import re

import pytest

from .process_kubelet import (
    ProcessKubelet,
    expand,
    image_repository,
    runnable,
    runnable_image_regex,
)


@pytest.mark.parametrize(
    ("image", "runs"),
    [
        ("bananas:e2e", True),
        ("bananas:e2e-next", True),
        ("bananas-worker:1.2.3", True),
        ("bananas-operator:e2e", True),
        ("ghcr.io/bananas-dev/bananas:0.1.0", True),
        ("ghcr.io/bananas-dev/bananas-operator:0.1.0", True),
        ("bananas@sha256:" + "a" * 64, True),
        ("bananas-missing:e2e", False),
        ("redis:7.4.2-alpine", False),
        ("evil.example/bananas:e2e", False),
        ("ghcr.io/bananas-dev/bananas-example:0.1.0", False),
    ],
)
def test_which_images_run(image: str, runs: bool) -> None:
    assert runnable(image) is runs
    # kwok evaluates the same regex with Go's RE2: keep it to the common subset.
    assert not re.search(r"\(\?[^:]", runnable_image_regex())


def test_image_repository() -> None:
    assert image_repository("ghcr.io/x/y:1") == "ghcr.io/x/y"
    assert image_repository("localhost:5000/y") == "localhost:5000/y"
    assert image_repository("y@sha256:ab") == "y"


def test_ports_and_urls_are_rewritten() -> None:
    env = {
        "METRICS_PORT": "8000",
        "LIVENESS_ENDPOINT": "http://0.0.0.0:8081/healthz",
        "OTHER_PORT": "9999",
        "WORKER_CONCURRENCY": "8000",
    }
    out = ProcessKubelet._rewrite_ports(env, {8000: 41000, 8081: 41001})
    assert out == {
        "METRICS_PORT": "41000",
        "LIVENESS_ENDPOINT": "http://0.0.0.0:41001/healthz",
        "OTHER_PORT": "9999",
        "WORKER_CONCURRENCY": "8000",
    }


def test_variable_expansion() -> None:
    assert expand("$(A)-$(B)-$$(A)", {"A": "1"}) == "1-$(B)-$(A)"
