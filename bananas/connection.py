"""Redis connections from URLs, for the sync and the async side alike.

URL forms (``Client(url)``, ``REDIS_URL``):

- ``redis://[[user]:password@]host[:port][/db]`` — one server.
- ``rediss://...`` — the same over TLS; ``?ssl_ca_certs=/path/ca.pem`` names a CA file
  (or pass ``ssl_ca_certs=`` to the client), ``?ssl_cert_reqs=none`` turns verification off.
- ``unix:///path/to/redis.sock[?db=0]`` — a Unix socket.
- ``redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name[/db]`` — Redis
  Sentinel; the password is used for the master as well as the sentinels.
- ``redis+cluster://[[user]:password@]host:port[,host:port...]`` (``rediss+cluster://`` for
  TLS) — Redis Cluster; any reachable nodes seed the topology.

Every error text built here masks the password (:func:`mask_url`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.cluster import ClusterNode, RedisCluster
from redis.sentinel import Sentinel

from bananas.errors import ConfigError
from bananas.translate import REDIS_ERRORS, translate

DEFAULT_URL = "redis://localhost:6379"
#: Socket timeouts (seconds). Blocking commands are issued in chunks shorter than this
#: (see ``broker.MAX_BLOCK_SECONDS``), so a stalled server is noticed, never waited on forever.
SOCKET_TIMEOUT = 10.0
CONNECT_TIMEOUT = 5.0
_SCHEMES = (
    "redis",
    "rediss",
    "unix",
    "redis+sentinel",
    "rediss+sentinel",
    "redis+cluster",
    "rediss+cluster",
)


def mask_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


@dataclass(frozen=True)
class RedisTarget:
    """A parsed Redis URL: what kind of deployment and how to reach it."""

    url: str
    kind: str  # "single", "sentinel" or "cluster"
    nodes: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def masked(self) -> str:
        """The URL with its password masked, for messages and logs."""
        return mask_url(self.url)

    @property
    def is_cluster(self) -> bool:
        return self.kind == "cluster"


def _nodes(netloc: str, url: str) -> tuple[tuple[str, int], ...]:
    hosts = netloc.rsplit("@", 1)[-1]
    nodes = []
    for item in hosts.split(","):
        host, _, port = item.rpartition(":")
        if not host:
            host, port = item, "26379" if "sentinel" in url else "6379"
        try:
            nodes.append((host.strip("[]"), int(port)))
        except ValueError:
            raise ConfigError(f"bad host:port {item!r} in Redis URL {mask_url(url)}") from None
    return tuple(nodes)


def parse_url(url: str, **options: Any) -> RedisTarget:
    """Parse a Redis URL into a :class:`RedisTarget`; raises :class:`ConfigError` if malformed."""
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        raise ConfigError(
            f"unsupported Redis URL {mask_url(url)}: use one of "
            + ", ".join(f"{s}://" for s in _SCHEMES)
        )
    query = dict(parse_qsl(parts.query))
    opts = {
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_connect_timeout": CONNECT_TIMEOUT,
        # Replies are decoded as UTF-8. A value that is not (a job record written as raw
        # bytes by some other producer) must become an unreadable record that is
        # dead-lettered, not a UnicodeDecodeError that ends the worker's fetch loop.
        "encoding_errors": "replace",
        **{k: v for k, v in query.items() if k.startswith("ssl_")},
        **options,
    }
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    tls = parts.scheme.startswith("rediss")
    if parts.scheme.endswith("+sentinel"):
        path = [p for p in parts.path.split("/") if p]
        if not path:
            raise ConfigError(f"a sentinel URL names its service: {mask_url(url)}")
        db = int(path[1]) if len(path) > 1 else 0
        return RedisTarget(
            url, "sentinel", _nodes(parts.netloc, url), path[0], db, username, password, tls, opts
        )
    if parts.scheme.endswith("+cluster"):
        return RedisTarget(
            url, "cluster", _nodes(parts.netloc, url), "", 0, username, password, tls, opts
        )
    return RedisTarget(url, "single", (), "", 0, username, password, tls, opts)


def _tls_options(target: RedisTarget) -> dict[str, Any]:
    opts = {"decode_responses": True, **target.options}
    if target.tls:
        opts["ssl"] = True
    return opts


@dataclass(frozen=True)
class _Flavour:
    """The redis-py classes of one side (sync or asyncio)."""

    redis: Any
    cluster: Any
    node: Any
    sentinel: Any


_SYNC = _Flavour(redis.Redis, RedisCluster, ClusterNode, Sentinel)
_ASYNC = _Flavour(aioredis.Redis, AsyncRedisCluster, AsyncClusterNode, AsyncSentinel)


def _connect(target: RedisTarget, flavour: _Flavour) -> Any:
    if target.kind == "cluster":
        return flavour.cluster(
            startup_nodes=[flavour.node(h, p) for h, p in target.nodes],
            username=target.username,
            password=target.password,
            **_tls_options(target),
        )
    if target.kind == "sentinel":
        sentinel = flavour.sentinel(
            list(target.nodes),
            sentinel_kwargs={"password": target.password},
            username=target.username,
            password=target.password,
            db=target.db,
            **_tls_options(target),
        )
        return sentinel.master_for(target.service)
    return flavour.redis.from_url(target.url, decode_responses=True, **target.options)


def connect_sync(target: RedisTarget) -> redis.Redis | RedisCluster:
    """A sync redis-py client for ``target``.

    Lazy, except for a cluster: redis-py's sync cluster client reads the topology when
    it is built, so an unreachable cluster raises :class:`BananasConnectionError` here
    (a refused password :class:`BananasAuthenticationError`).
    """
    try:
        client: redis.Redis | RedisCluster = _connect(target, _SYNC)
    except REDIS_ERRORS as exc:
        raise translate(exc, target.masked) from None
    return client


def connect_async(target: RedisTarget) -> aioredis.Redis | AsyncRedisCluster:
    """An asyncio redis-py client for ``target`` (lazy: no I/O happens here)."""
    client: aioredis.Redis | AsyncRedisCluster = _connect(target, _ASYNC)
    return client
