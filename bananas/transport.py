"""Drivers that run operations (``bananas.ops``) on Redis, and the lanes they use.

:func:`run_sync` drives an operation on a ``redis.Redis`` (or a :class:`SyncLane`);
:func:`run_async` drives it on a ``redis.asyncio.Redis`` (or a :class:`FastLane` /
:class:`LanePool`). Scripts are sent as EVALSHA and fall back to EVAL once when the
server does not know them yet (after a restart or on a new cluster node). Errors from
redis-py are translated here, at the boundary, into :class:`bananas.errors.BananasError`
and :class:`bananas.errors.BananasConnectionError`.

Every command Bananas sends is safe to send twice: enqueue is idempotent by job id,
ack/fail/renew/release check the lease token, and reads and blocking pops repeat
harmlessly. That is what lets a lane resend a command once on a fresh connection
when the server closed the old one. The one exception is marked (``Call.resend``):
the blocking pop of a worker's hand-off list, whose lost reply is a job leased to that
worker; its error goes up to the fetcher, which recovers the job from Redis.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

from bananas.ops import Batch, Call, Op, Request
from bananas.translate import REDIS_ERRORS, translate

T = TypeVar("T")

try:
    from hiredis import pack_command as _pack
except ImportError:  # pragma: no cover - hiredis comes with redis[hiredis]
    _pack = None  # type: ignore[assignment]

SyncRedis = redis.Redis | RedisCluster
AsyncRedis = aioredis.Redis | AsyncRedisCluster


def raise_if_cancelled() -> None:
    """Re-raise a cancellation that redis-py turned into a connection error.

    A loop that retries on connection errors would otherwise swallow the
    cancellation of its own task and never stop.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


_translate = translate
#: Connections an AsyncClient's tasks share for their commands, at most (a task that
#: finds them all busy waits for the next one given back). Blocking result waits do not
#: take one: they share the client's wait hubs (``bananas.waits``).
MAX_LANES = 64
#: Idle lanes a :class:`LanePool` keeps open; more, left over from a burst, are closed.
MAX_IDLE_LANES = 4


def _eval_args(call: Call) -> tuple[Any, ...]:
    assert call.script is not None
    return ("EVAL", call.script.source, *call.args[2:])


def _run_call_sync(conn: SyncRedis, call: Call) -> Any:
    try:
        return conn.execute_command(*call.args)
    except redis.exceptions.NoScriptError:
        return conn.execute_command(*_eval_args(call))


def execute_sync(conn: SyncRedis | SyncLane, request: Request) -> Any:
    """Send one request on a sync connection and return its reply."""
    if isinstance(conn, SyncLane):
        return conn.execute(request)
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
        #: Reads this lane's replies (a new one on every connect); see :meth:`_roundtrip`.
        self._parser: Any = None

    async def call(self, args: tuple[Any, ...], *, retry: bool = True) -> Any:
        conn = self.connection
        try:
            return await self._roundtrip(conn, _pack(args))
        except redis.ResponseError:
            raise
        except redis.ConnectionError:
            await conn.disconnect()
            if not retry:
                raise
            # A connection the server closed (restart, idle timeout): once more on a new one.
            # Every command sent here is safe to repeat (see the module docstring).
            return await self.call(args, retry=False)
        except BaseException:
            await conn.disconnect()
            raise

    async def _roundtrip(self, conn: Any, packed: bytes) -> Any:
        """Send ``packed`` and read its reply straight off the connection's stream.

        redis-py connects (TLS, AUTH, SELECT, HELLO: its own handshake); after that the
        lane writes to the stream and feeds what it reads to a hiredis reader of its
        own, set up as redis-py sets up its hiredis parser (error replies become
        redis-py's exception classes, decoding as the client's). That skips redis-py's
        per-command layers (health check, drain, a timeout for the write and one for the
        read, push-notification handling): a round trip cost ~90 µs of CPU through
        them and ~25 µs this way (docs/performance.md). The read is bounded by the
        connection's ``socket_timeout``, as redis-py's is.
        """
        if not conn.is_connected or self._parser is None:
            await conn.connect()
            self._parser = _reader_for(conn)
        parser = self._parser
        conn._writer.write(packed)
        reply = parser.gets()
        if reply is _NOT_YET:
            stream = conn._reader
            try:
                async with asyncio.timeout(conn.socket_timeout):
                    while reply is _NOT_YET:
                        data = await stream.read(_READ_SIZE)
                        if not data:
                            raise redis.ConnectionError("Connection closed by server.")
                        parser.feed(data)
                        reply = parser.gets()
            except TimeoutError as exc:  # (before OSError: TimeoutError is one)
                raise redis.TimeoutError("Timeout reading from the Redis socket") from exc
            except OSError as exc:
                raise redis.ConnectionError(f"Error reading from the Redis socket: {exc}") from exc
        # An error reply comes back as the exception redis-py would raise: a ResponseError
        # (NOSCRIPT, WRONGTYPE, OOM ...) or a ConnectionError (LOADING after a restart).
        if isinstance(reply, redis.RedisError):
            raise reply
        return reply

    async def execute(self, request: Request) -> Any:
        if isinstance(request, Batch):
            return [await self.call(c.args) for c in request.calls]
        try:
            return await self.call(request.args, retry=request.resend)
        except redis.exceptions.NoScriptError:
            return await self.call(_eval_args(request))

    async def close(self) -> None:
        await self.connection.disconnect()


class LanePool:
    """:class:`FastLane` s for an :class:`~bananas.AsyncClient` shared by many tasks.

    Each request borrows an idle lane (or opens one) and gives it back, so concurrent
    tasks never share a connection; a lane that failed is given back disconnected
    and reconnects on its next use. A lane given back while ``max_idle`` others are
    idle and nobody waits is closed: a burst of 64 concurrent calls does not leave
    64 connections (and their buffers) open for good. The operator holds one pool
    per Redis URL of a whole fleet, where that adds up.
    """

    def __init__(
        self, client: aioredis.Redis, *, max_lanes: int = MAX_LANES, max_idle: int = MAX_IDLE_LANES
    ) -> None:
        self._client = client
        self._idle: list[FastLane] = []
        self._all: list[FastLane] = []
        self.max_lanes = max_lanes
        self.max_idle = max_idle
        self._queue: list[asyncio.Future[None]] = []

    async def execute(self, request: Request) -> Any:
        lane = await self._borrow()
        try:
            return await lane.execute(request)
        finally:
            await self._give_back(lane)

    async def _give_back(self, lane: FastLane) -> None:
        while self._queue:
            waiter = self._queue.pop(0)
            if not waiter.done():
                self._idle.append(lane)
                waiter.set_result(None)
                return
        if len(self._idle) < self.max_idle:
            self._idle.append(lane)
            return
        # Nobody in use can reconnect it: it leaves the pool, so close() need not see it.
        self._all.remove(lane)
        await lane.close()

    async def _borrow(self) -> FastLane:
        """An idle lane, a new one while fewer than ``max_lanes`` are open, else the
        next one given back (so a burst of tasks shares a bounded set of connections)."""
        while not self._idle and len(self._all) >= self.max_lanes:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._queue.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter in self._queue:
                    self._queue.remove(waiter)
                elif waiter.done() and not waiter.cancelled() and self._queue:
                    # woken but cancelled: pass the wake-up to the next in line
                    nxt = self._queue.pop(0)
                    if not nxt.done():
                        nxt.set_result(None)
                raise
        if self._idle:
            return self._idle.pop()
        lane = FastLane(self._client)
        self._all.append(lane)
        return lane

    async def close(self) -> None:
        """Disconnect every lane, the ones in use too; the pool keeps them all.

        A call still running on a lane when its client closes may reconnect it (it
        retries once on a dropped connection); that lane comes back to this pool, so
        a later ``close()`` disconnects it again instead of leaking its socket.
        """
        for lane in self._all:
            await lane.close()


def lane_pool(client: AsyncRedis) -> LanePool | None:
    """A :class:`LanePool` on ``client`` when fast lanes apply (see :func:`fast_lane`)."""
    return LanePool(client) if _lanes_apply(client) else None  # type: ignore[arg-type]


class SyncLane:
    """The sync counterpart of :class:`FastLane`: one raw connection per thread.

    redis-py's sync ``execute_command`` spends several times the loopback round trip
    on its own bookkeeping; a client that submits one job at a time pays that on
    every job. Each thread gets its own connection, so a shared ``Client`` stays
    thread-safe.
    """

    def __init__(self, client: redis.Redis) -> None:
        self._pool = client.connection_pool
        self._local = threading.local()
        self._connections: list[Any] = []

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._pool.make_connection()
            self._connections.append(conn)
        return conn

    def call(self, args: tuple[Any, ...], *, retry: bool = True) -> Any:
        conn = self._connection()
        try:
            conn.send_packed_command([_pack(args)], check_health=False)
            return conn.read_response()
        except redis.ResponseError:
            raise
        except redis.ConnectionError:
            conn.disconnect()
            if not retry:
                raise
            return self.call(args, retry=False)  # once more, as FastLane.call
        except BaseException:
            conn.disconnect()
            raise

    def execute(self, request: Request) -> Any:
        if isinstance(request, Batch):
            return [self.call(c.args) for c in request.calls]
        try:
            return self.call(request.args)
        except redis.exceptions.NoScriptError:
            return self.call(_eval_args(request))

    def close(self) -> None:
        for conn in self._connections:
            conn.disconnect()
        self._connections.clear()


def sync_lane(client: SyncRedis) -> SyncLane | None:
    """A :class:`SyncLane` on ``client`` when it is a single server and hiredis is present."""
    if (
        _pack is None
        or not isinstance(client, redis.Redis)
        or type(client.connection_pool) is not redis.ConnectionPool
    ):
        return None
    return SyncLane(client)


#: Bytes a lane asks its stream for at a time.
_READ_SIZE = 65536
#: What a lane's reader answers while a reply is incomplete (never a reply itself).
_NOT_YET = object()


def _reader_for(conn: Any) -> Any:
    """A hiredis reader for ``conn``'s replies, configured as redis-py's hiredis parser."""
    import hiredis
    from redis._parsers.base import BaseParser
    from redis.exceptions import InvalidResponse

    options: dict[str, Any] = {
        "protocolError": InvalidResponse,
        "replyError": BaseParser.parse_error,
        "notEnoughData": _NOT_YET,
    }
    if conn.encoder.decode_responses:
        options["encoding"] = conn.encoder.encoding
        options["errors"] = conn.encoder.encoding_errors
    return hiredis.Reader(**options)


def _lanes_apply(client: AsyncRedis) -> bool:
    """Lanes need hiredis and a single server (not a cluster, not a sentinel-managed pool)."""
    return (
        _pack is not None
        and isinstance(client, aioredis.Redis)
        and type(client.connection_pool) is aioredis.ConnectionPool
    )


def fast_lane(client: AsyncRedis) -> FastLane | None:
    """A :class:`FastLane` on ``client`` when lanes apply, else None."""
    return FastLane(client) if _lanes_apply(client) else None  # type: ignore[arg-type]


async def execute_async(conn: AsyncRedis | FastLane | LanePool, request: Request) -> Any:
    """Send one request on an asyncio connection and return its reply."""
    if isinstance(conn, FastLane | LanePool):
        return await conn.execute(request)
    if isinstance(request, Call):
        return await _run_call_async(conn, request)
    pipe = conn.pipeline(transaction=False)
    for call in request.calls:
        pipe.execute_command(*call.args)
    return await pipe.execute()


def run_sync(conn: SyncRedis | SyncLane, op: Op[T], where: str) -> T:
    """Drive ``op`` to completion on a sync connection; ``where`` names Redis in errors."""
    try:
        request = next(op)
        while True:
            try:
                reply = execute_sync(conn, request)
            except REDIS_ERRORS as exc:
                request = op.throw(_translate(exc, where))
            else:
                request = op.send(reply)
    except StopIteration as stop:
        return stop.value


async def run_async(conn: AsyncRedis | FastLane | LanePool, op: Op[T], where: str) -> T:
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
            except REDIS_ERRORS as exc:
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError from exc
                request = op.throw(_translate(exc, where))
            else:
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError
                request = op.send(reply)
    except StopIteration as stop:
        return stop.value
