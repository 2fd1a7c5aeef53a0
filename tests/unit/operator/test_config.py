"""The operator's settings from its environment."""

from __future__ import annotations

import pytest

from bananas.errors import ConfigError
from bananas.operator.config import OperatorConfig


def test_defaults() -> None:
    config = OperatorConfig.from_env({})
    assert config == OperatorConfig()
    assert config.namespaces == ()
    assert config.scheduler.replicas == 2


def test_from_env() -> None:
    config = OperatorConfig.from_env(
        {
            "WATCH_NAMESPACES": "a, b,,",
            "KUBECONFIG": "/k",
            "CRON_SYNC_INTERVAL": "2.5",
            "METRICS_PORT": "0",
            "SCHEDULER_IMAGE": "img:1",
            "SCHEDULER_REPLICAS": "3",
        }
    )
    assert config.namespaces == ("a", "b")
    assert config.kubeconfig == "/k"
    assert config.cron_sync_interval == 2.5
    assert config.metrics_port == 0
    assert (config.scheduler.image, config.scheduler.replicas) == ("img:1", 3)


@pytest.mark.parametrize("value", ["soon", "-1"])
def test_bad_numbers_name_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="CRON_SYNC_INTERVAL"):
        OperatorConfig.from_env({"CRON_SYNC_INTERVAL": value})
