"""A small synchronous Kubernetes REST client for the harness (urllib, JSON).

The pod tier's helpers (``podtier.py``) and the process kubelet
(``process_kubelet.py``) run outside any event loop and need a handful of
calls (get, create, patch, delete, watch), so they use this instead of the
async ``kubernetes_asyncio`` models the tests use. It reads the JSON
kubeconfigs ``controlplane.write_kubeconfig`` writes: one cluster, one
bearer-token user.
"""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

JsonObject = dict[str, Any]


class ApiError(RuntimeError):
    """A non-2xx answer, with the server's status and message."""

    def __init__(self, status: int, message: str, method: str, path: str) -> None:
        super().__init__(f"{method} {path}: {status} {message}")
        self.status = status
        self.message = message


class KubeApi:
    """Bearer-token access to one API server, as a kubeconfig describes it."""

    def __init__(self, kubeconfig: Path, *, timeout: float = 30.0) -> None:
        config = json.loads(kubeconfig.read_text())
        context = next(
            c["context"] for c in config["contexts"] if c["name"] == config["current-context"]
        )
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
        self.server = str(cluster["server"]).rstrip("/")
        self.token = str(user["token"])
        self.timeout = timeout
        self._ssl = ssl.create_default_context()
        if ca_data := cluster.get("certificate-authority-data"):
            with tempfile.NamedTemporaryFile("wb", suffix=".crt") as ca:
                ca.write(base64.b64decode(ca_data))
                ca.flush()
                self._ssl.load_verify_locations(ca.name)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> JsonObject:
        """One call; the decoded JSON answer, or :class:`ApiError`."""
        response = self._open(method, path, body, query, content_type, timeout)
        with response:
            data = response.read()
        result: JsonObject = json.loads(data) if data else {}
        return result

    def get(self, path: str, **query: str) -> JsonObject:
        return self.request("GET", path, query=query)

    def create(self, path: str, body: JsonObject) -> JsonObject:
        return self.request("POST", path, body)

    def patch(self, path: str, body: JsonObject, *, strategic: bool = True) -> JsonObject:
        kind = "strategic-merge-patch" if strategic else "merge-patch"
        return self.request("PATCH", path, body, content_type=f"application/{kind}+json")

    def delete(self, path: str, body: JsonObject | None = None) -> JsonObject:
        return self.request("DELETE", path, body)

    def watch(
        self, path: str, resource_version: str, *, timeout_seconds: int = 60, **query: str
    ) -> Iterator[JsonObject]:
        """The events of one watch request, until the server ends it."""
        params = {
            **query,
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        response = self._open("GET", path, None, params, "application/json", timeout_seconds + 10)
        with response:
            for line in response:
                if line.strip():
                    yield json.loads(line)

    def _open(
        self,
        method: str,
        path: str,
        body: Any,
        query: Mapping[str, str] | None,
        content_type: str,
        timeout: float | None,
    ) -> Any:
        url = self.server + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", content_type)
        try:
            return urllib.request.urlopen(
                request, timeout=timeout or self.timeout, context=self._ssl
            )
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            try:
                message = str(json.loads(text).get("message", text))
            except ValueError:
                message = text
            raise ApiError(exc.code, message, method, path) from None
