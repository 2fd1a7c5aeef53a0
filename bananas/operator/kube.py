"""The operator's boundary with the Kubernetes API (kubernetes_asyncio).

kopf watches the custom resources and posts Events; everything else the
operator reads or writes goes through :class:`Kube`: server-side apply of the
children, reading a Deployment or a Secret, listing and watching the
operator's Deployments (for :mod:`~bananas.operator.deployment_cache`),
patching a custom resource's status. Objects travel as plain JSON dicts
(what the pure reconcile functions return), never as the client's generated
model classes.

Errors are translated here: an ``ApiException`` or a network failure becomes a
:class:`KubernetesApiError` carrying the HTTP status (0 for "no answer"), so
the handlers decide on status codes without importing the client library.

Server-side apply (``application/apply-patch+yaml``, ``force=True``) makes every
write idempotent and declarative: the operator states the whole object it
wants under its field manager; fields other managers own (an HPA, a human
adding a label) are left alone, and nothing needs a create-or-update dance.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import inspect
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from bananas.errors import BananasError, ConfigError
from bananas.kubeconfig import load_kube_configuration
from bananas.operator.meta import GROUP, MANAGER, VERSION, JsonObject

logger = logging.getLogger(__name__)

APPLY = "application/apply-patch+yaml"
#: What the API server says (with a 500) when an applied object has a value of the wrong form.
UNDECODABLE = "unable to convert unstructured object"
MERGE = "application/merge-patch+json"


class KubernetesApiError(BananasError):
    """A Kubernetes API call failed; ``status`` is the HTTP status, 0 when none came back."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Kubernetes API error {status}: {message}" if status else message)
        self.status = status
        self.message = message

    @property
    def not_found(self) -> bool:
        """True for 404."""
        return self.status == 404

    @property
    def invalid(self) -> bool:
        """True when the API refused the object itself, so retrying is futile: 400 or 422,
        and the 500 a server-side apply answers for a value it cannot even decode (a
        quantity such as ``memory: lots``: "failed to convert new object ... unable to
        convert unstructured object")."""
        if self.status in (400, 422):
            return True
        return self.status == 500 and UNDECODABLE in self.message


def _translate(exc: BaseException) -> KubernetesApiError:
    if isinstance(exc, ApiException):
        message = str(exc.reason or "")
        with contextlib.suppress(ValueError, AttributeError):
            message = json.loads(exc.body or "{}").get("message") or message
        return KubernetesApiError(int(exc.status or 0), message)
    return KubernetesApiError(0, f"{type(exc).__name__}: {exc}")


_TRANSIENT = (ApiException, aiohttp.ClientError, asyncio.TimeoutError, OSError)
#: Concurrent requests of the operator's own client (watches not counted).
API_CONNECTIONS = 32


async def load_configuration(kubeconfig: str | None = None) -> k8s.Configuration:
    """Client settings: ``kubeconfig`` if given, else in-cluster, else ``~/.kube/config``
    (:func:`bananas.kubeconfig.load_kube_configuration`).

    Raises :class:`KubernetesApiError` (status 0) when none of them is usable.
    """
    try:
        return await load_kube_configuration(kubeconfig)
    except ConfigError as exc:
        raise KubernetesApiError(0, str(exc)) from exc


async def bearer_token(configuration: k8s.Configuration) -> str | None:
    """The ``Authorization`` header value the configuration would send, if any."""
    header: Any = configuration.get_api_key_with_prefix("BearerToken")
    if inspect.isawaitable(header):
        header = await header
    return header if isinstance(header, str) and header else None


class Kube:
    """Typed, translated access to the few API calls the operator makes."""

    def __init__(self, api: k8s.ApiClient, *, manager: str = MANAGER) -> None:
        self.api = api
        self.manager = manager
        self.apps = k8s.AppsV1Api(api)
        self.core = k8s.CoreV1Api(api)
        self.policy = k8s.PolicyV1Api(api)
        self.rbac = k8s.RbacAuthorizationV1Api(api)
        self.custom = k8s.CustomObjectsApi(api)

    @classmethod
    def from_configuration(cls, configuration: k8s.Configuration, *, watches: int = 1) -> Kube:
        """A client over its own connection pool (close it with :meth:`close`) of
        :data:`API_CONNECTIONS` plus one per long-lived watch it will hold (the
        client's default is 100: each open TLS connection holds a 256 KiB read buffer,
        and a start-up burst would leave them all open)."""
        configuration.connection_pool_maxsize = API_CONNECTIONS + watches
        return cls(k8s.ApiClient(configuration))

    async def close(self) -> None:
        """Close the connection pool."""
        await self.api.close()

    async def _call(self, call: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await call()
        except _TRANSIENT as exc:
            raise _translate(exc) from exc

    def _json(self, model: Any) -> JsonObject:
        data = self.api.sanitize_for_serialization(model)
        return data if isinstance(data, dict) else {}

    async def apply(self, obj: JsonObject, *, manager: str | None = None) -> JsonObject:
        """Server-side apply ``obj`` (a Deployment, PodDisruptionBudget, ServiceAccount
        or RoleBinding) with ``force``; returns the object as stored.

        Raises :class:`KubernetesApiError`; ``ValueError`` for a kind it does not know.
        """
        kind = obj["kind"]
        name = obj["metadata"]["name"]
        namespace = obj["metadata"]["namespace"]
        options = {
            "field_manager": manager or self.manager,
            "force": True,
            "_content_type": APPLY,
        }
        appliers: dict[str, Callable[..., Awaitable[Any]]] = {
            "Deployment": self.apps.patch_namespaced_deployment,
            "PodDisruptionBudget": self.policy.patch_namespaced_pod_disruption_budget,
            "ServiceAccount": self.core.patch_namespaced_service_account,
            "RoleBinding": self.rbac.patch_namespaced_role_binding,
        }
        if kind not in appliers:
            raise ValueError(f"cannot apply a {kind}")
        applier = appliers[kind]
        result = await self._call(lambda: applier(name, namespace, obj, **options))
        logger.debug("applied %s %s/%s", kind, namespace, name)
        return self._json(result)

    async def get_deployment(self, namespace: str, name: str) -> JsonObject | None:
        """The Deployment as JSON, or None when it does not exist."""
        try:
            model = await self._call(lambda: self.apps.read_namespaced_deployment(name, namespace))
        except KubernetesApiError as exc:
            if exc.not_found:
                return None
            raise
        return self._json(model)

    async def list_deployments(
        self, namespace: str | None, selector: str
    ) -> tuple[list[JsonObject], str]:
        """The Deployments matching the label ``selector`` in ``namespace`` (None: all
        namespaces) as raw JSON, and the list's resourceVersion to watch from.

        Read without the client's model classes: the cache keeps JSON anyway.
        Raises :class:`KubernetesApiError`.
        """
        options: dict[str, Any] = {"label_selector": selector, "_preload_content": False}

        async def call() -> Any:
            response: Any  # the raw aiohttp response (no model classes)
            if namespace is None:
                response = await self.apps.list_deployment_for_all_namespaces(**options)
            else:
                response = await self.apps.list_namespaced_deployment(namespace, **options)
            async with response:
                return json.loads(await response.read())

        listing = await self._call(call)
        items = listing.get("items") or []
        return items, str((listing.get("metadata") or {}).get("resourceVersion") or "")

    async def watch_deployments(
        self, namespace: str | None, selector: str, resource_version: str, timeout: int
    ) -> AsyncIterator[tuple[str, JsonObject]]:
        """The watch events (type, raw object) of the Deployments matching ``selector``
        after ``resource_version``, until the server ends the watch (after ``timeout``
        seconds). ``BOOKMARK`` events carry only a resourceVersion.

        Raises :class:`KubernetesApiError`; 410 when ``resource_version`` is too old.
        """
        options: dict[str, Any] = {
            "label_selector": selector,
            "watch": True,
            "resource_version": resource_version,
            "allow_watch_bookmarks": True,
            "timeout_seconds": timeout,
            "_preload_content": False,
            "_request_timeout": timeout + 30,
        }
        if namespace is None:
            opening = self.apps.list_deployment_for_all_namespaces(**options)
        else:
            opening = self.apps.list_namespaced_deployment(namespace, **options)
        response = await self._call(lambda: opening)
        async with response:
            while True:
                line = await self._call(response.content.readline)
                if not line:
                    return
                try:
                    event = json.loads(line)
                except ValueError:  # cut off mid-line: the caller watches again
                    return
                kind, obj = str(event.get("type") or ""), event.get("object") or {}
                if kind == "ERROR":
                    raise KubernetesApiError(int(obj.get("code") or 0), str(obj.get("message")))
                yield kind, obj

    async def list_pods(self, namespace: str, selector: dict[str, str]) -> list[JsonObject]:
        """The pods matching ``selector`` (equality labels), as JSON."""
        label_selector = ",".join(f"{key}={value}" for key, value in sorted(selector.items()))
        result = await self._call(
            lambda: self.core.list_namespaced_pod(namespace, label_selector=label_selector)
        )
        return [self._json(pod) for pod in result.items or []]

    async def annotate_pod(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        """Merge-patch annotations onto one pod (the verb the operator's RBAC grants)."""
        body = {"metadata": {"annotations": annotations}}
        options: dict[str, Any] = {"_content_type": MERGE}
        await self._call(lambda: self.core.patch_namespaced_pod(name, namespace, body, **options))

    async def read_secret_value(self, namespace: str, name: str, key: str) -> str:
        """One value of a Secret, decoded.

        Raises :class:`KubernetesApiError`: 404 when the Secret is missing, and a
        404 too (with a message naming the key) when the key is.
        """
        secret = await self._call(lambda: self.core.read_namespaced_secret(name, namespace))
        data = secret.data or {}
        if key not in data:
            raise KubernetesApiError(404, f"Secret {namespace}/{name} has no key {key!r}")
        try:
            return base64.b64decode(data[key]).decode().strip()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise KubernetesApiError(422, f"Secret {namespace}/{name} key {key!r}: {exc}") from exc

    async def patch_status(
        self, plural: str, namespace: str, name: str, status: JsonObject
    ) -> None:
        """Merge-patch the status subresource of one of our custom resources."""
        body = {"status": status}
        options: dict[str, Any] = {"_content_type": MERGE}
        await self._call(
            lambda: self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, plural, name, body, **options
            )
        )
