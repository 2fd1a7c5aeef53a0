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


def test_leader_election_from_env() -> None:
    config = OperatorConfig.from_env(
        {
            "LEADER_ELECTION": "true",
            "POD_NAMESPACE": "ops",
            "POD_NAME": "op-1",
            "LEASE_DURATION": "6",
            "RENEW_DEADLINE": "4",
            "RETRY_PERIOD": "1",
        }
    )
    election = config.leader_election
    assert election.enabled
    assert (election.namespace, election.name, election.identity) == (
        "ops",
        "bananas-operator",
        "op-1",
    )
    assert (election.lease_duration, election.renew_deadline, election.retry_period) == (6, 4, 1)
    assert not OperatorConfig.from_env({}).leader_election.enabled


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LEADER_ELECTION": "true"}, "POD_NAMESPACE"),
        ({"LEADER_ELECTION": "yes please"}, "LEADER_ELECTION"),
        (
            {"LEADER_ELECTION": "true", "POD_NAMESPACE": "o", "RENEW_DEADLINE": "20"},
            "RENEW_DEADLINE < LEASE_DURATION",
        ),
    ],
)
def test_leader_election_refuses(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        OperatorConfig.from_env(env)
