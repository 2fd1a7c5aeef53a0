"""Kubernetes credentials, loaded one way for everything in Bananas that talks to the API.

The operator (its own client) and the scheduler's Lease elector
(:mod:`bananas.worker_runtime.leader_kubernetes`) both need a
``kubernetes_asyncio`` client configuration, and both should find credentials
the same way:

1. an explicit kubeconfig file, when one is named;
2. else the pod's ServiceAccount (the in-cluster token and CA);
3. else the default kubeconfig (``$KUBECONFIG`` or ``~/.kube/config``), which
   is what a developer running either process on a laptop has.

``in_cluster`` narrows that: ``True`` allows only step 2, ``False`` skips it.

``kubernetes_asyncio`` is imported when credentials are loaded, not when this
module is, because it belongs to the ``operator`` extra: an application that
uses only the SDK (which does not need Kubernetes) never imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bananas.errors import ConfigError

if TYPE_CHECKING:
    from kubernetes_asyncio.client import Configuration


async def load_kube_configuration(
    kubeconfig: str | None = None, *, in_cluster: bool | None = None
) -> Configuration:
    """A fresh client configuration, found as the module docstring says.

    Raises :class:`bananas.errors.ConfigError` when no source yields usable
    credentials (or ``kubernetes_asyncio`` is not installed).
    """
    try:
        from kubernetes_asyncio import client as k8s
        from kubernetes_asyncio import config as k8s_config
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ConfigError(
            "Kubernetes support needs the operator extra: pip install 'bananas-queue[operator]'"
        ) from exc
    # A fresh Configuration, not a copy of the library's global default.
    configuration: Configuration = type.__call__(k8s.Configuration)
    try:
        if kubeconfig or in_cluster is False:
            await k8s_config.load_kube_config(
                config_file=kubeconfig, client_configuration=configuration, persist_config=False
            )
            return configuration
        try:
            k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
        except k8s_config.ConfigException:
            if in_cluster:
                raise
            await k8s_config.load_kube_config(
                client_configuration=configuration, persist_config=False
            )
    except (k8s_config.ConfigException, OSError) as exc:
        raise ConfigError(f"no usable Kubernetes credentials: {exc}") from exc
    return configuration
