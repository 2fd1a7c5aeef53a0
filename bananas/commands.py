"""Redis round trips as data, so one piece of logic serves the sync and the async client.

An *operation* is a generator that yields :class:`Call` (one command or script) or
:class:`Batch` (several plain commands in one pipeline) and receives each reply.
:func:`run_sync` drives it on a ``redis.Redis``; :func:`run_async` drives it on a
``redis.asyncio.Redis``. The operations themselves (``bananas.broker``) never do I/O,
which is why ``Client`` and ``AsyncClient`` share every line of their logic.

Scripts are sent as EVALSHA and fall back to EVAL once when the server does not
know them yet (after a restart or on a new cluster node). Errors from redis-py are
translated here into :class:`bananas.errors.BananasConnectionError`.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

from bananas.errors import BananasConnectionError, BananasError

T = TypeVar("T")

try:
    from hiredis import pack_command as _pack
except ImportError:  # pragma: no cover - hiredis comes with redis[hiredis]
    _pack = None  # type: ignore[assignment]

SyncRedis = redis.Redis | RedisCluster
AsyncRedis = aioredis.Redis | AsyncRedisCluster


class Script:
    """One Lua script from ``bananas/scripts``, loaded once at import."""

    __slots__ = ("name", "sha", "source")

    def __init__(self, name: str) -> None:
        self.name = name
        self.source = files("bananas.scripts").joinpath(f"{name}.lua").read_text("utf-8")
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()


@dataclass(slots=True)
class Call:
    """One command; ``script`` is set when ``args`` is an EVALSHA."""

    args: tuple[Any, ...]
    script: Script | None = None


@dataclass(slots=True)
class Batch:
    """Plain commands sent in one pipeline (not a transaction: used for reads only)."""

    calls: list[Call]


Request = Call | Batch
Op = Generator[Request, Any, T]


def script_call(script: Script, keys: Sequence[str], argv: Sequence[Any]) -> Call:
    """A call running ``script`` with ``keys`` and ``argv``."""
    return Call(("EVALSHA", script.sha, len(keys), *keys, *argv), script)


def command(*args: Any) -> Call:
    """A call running one plain command."""
    return Call(args)


def raise_if_cancelled() -> None:
    """Re-raise a cancellation that redis-py turned into a connection error.

    A loop that retries on connection errors would otherwise swallow the
    cancellation of its own task and never stop.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


_TRANSIENT = (redis.ConnectionError, redis.TimeoutError)


def _translate(exc: redis.RedisError, where: str) -> BananasError:
    if isinstance(exc, _TRANSIENT):
        return BananasConnectionError(f"cannot reach Redis at {where}: {exc}")
    return BananasError(f"Redis at {where} refused a command: {exc}")


def _eval_args(call: Call) -> tuple[Any, ...]:
    assert call.script is not None
    return ("EVAL", call.script.source, *call.args[2:])


def _run_call_sync(conn: SyncRedis, call: Call) -> Any:
    try:
        return conn.execute_command(*call.args)
    except redis.exceptions.NoScriptError:
        return conn.execute_command(*_eval_args(call))


def execute_sync(conn: SyncRedis, request: Request) -> Any:
    """Send one request on a sync connection and return its reply."""
    if isinstance(request, Call):
        return _run_call_sync(conn, request)
    pipe = conn.pipeline(transaction=False)
    for call in request.calls:
        pipe.execute_command(*call.args)
    return pipe.execute()


async def _run_call_async(conn: AsyncRedis, call: Call) -> Any:
    try:
        return await conn.execute_command(*call.args)
    except redis.exceptions.NoScriptError:
        return await conn.execute_command(*_eval_args(call))


class FastLane:
    """One dedicated connection for a worker's hot path (fetch, ack), single server only.

    redis-py packs commands in pure Python, which costs a few microseconds per
    argument; a batch ack of 100 jobs has 600 of them. A lane packs with hiredis' C
    ``pack_command`` and talks to its own connection, without the pool's locking.
    It is used by one task at a time (the fetcher, or the acker). Any error
    drops the connection; the next call reconnects.
    """

    def __init__(self, client: aioredis.Redis) -> None:
        self.connection = client.connection_pool.make_connection()

    async def call(self, args: tuple[Any, ...]) -> Any:
        conn = self.connection
        try:
            await conn.send_packed_command(_pack(args), check_health=False)
            return await conn.read_response()
        except redis.ResponseError:
            raise
        except BaseException:
            await conn.disconnect()
            raise

    async def execute(self, request: Request) -> Any:
        if isinstance(request, Batch):
            return [await self.call(c.args) for c in request.calls]
        try:
            return await self.call(request.args)
        except redis.exceptions.NoScriptError:
            return await self.call(_eval_args(request))

    async def close(self) -> None:
        await self.connection.disconnect()


def fast_lane(client: AsyncRedis) -> FastLane | None:
    """A :class:`FastLane` on ``client`` when it is a single server and hiredis is present."""
    if (
        _pack is None
        or not isinstance(client, aioredis.Redis)
        or type(client.connection_pool) is not aioredis.ConnectionPool
    ):
        return None
    return FastLane(client)


async def execute_async(conn: AsyncRedis | FastLane, request: Request) -> Any:
    """Send one request on an asyncio connection and return its reply."""
    if isinstance(conn, FastLane):
        return await conn.execute(request)
    if isinstance(request, Call):
        return await _run_call_async(conn, request)
    pipe = conn.pipeline(transaction=False)
    for call in request.calls:
        pipe.execute_command(*call.args)
    return await pipe.execute()


def run_sync(conn: SyncRedis, op: Op[T], where: str) -> T:
    """Drive ``op`` to completion on a sync connection; ``where`` names Redis in errors."""
    try:
        request = next(op)
        while True:
            try:
                reply = execute_sync(conn, request)
            except redis.RedisError as exc:
                request = op.throw(_translate(exc, where))
            else:
                request = op.send(reply)
    except StopIteration as stop:
        return stop.value


async def run_async(conn: AsyncRedis | FastLane, op: Op[T], where: str) -> T:
    """Drive ``op`` to completion on an asyncio connection; ``where`` names Redis in errors.

    redis-py may absorb the cancellation of a command in flight (it disconnects and
    retries, or reports a lost connection); the cancellation is re-raised here so the
    calling task does stop.
    """
    task = asyncio.current_task()
    try:
        request = next(op)
        while True:
            try:
                reply = await execute_async(conn, request)
            except redis.RedisError as exc:
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError from exc
                request = op.throw(_translate(exc, where))
            else:
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError
                request = op.send(reply)
    except StopIteration as stop:
        return stop.value
