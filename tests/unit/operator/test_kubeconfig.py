"""One way to find Kubernetes credentials, for the operator and the Lease elector."""

from __future__ import annotations

from pathlib import Path

import pytest

from bananas.errors import ConfigError
from bananas.kubeconfig import load_kube_configuration

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}
users:
- name: me
  user: {token: sekret}
contexts:
- name: test
  context: {cluster: test, user: me}
current-context: test
"""


async def test_a_named_kubeconfig_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    configuration = await load_kube_configuration(str(path))
    assert configuration.host == "https://127.0.0.1:6443"
    assert configuration.api_key["BearerToken"] == "Bearer sekret"


async def test_no_credentials_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no usable Kubernetes credentials"):
        await load_kube_configuration(str(tmp_path / "missing"))


async def test_in_cluster_only_does_not_fall_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ConfigError, match="no usable Kubernetes credentials"):
        await load_kube_configuration(in_cluster=True)


async def test_a_named_file_wins_over_in_cluster(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    configuration = await load_kube_configuration(str(path), in_cluster=False)
    assert configuration.host == "https://127.0.0.1:6443"
