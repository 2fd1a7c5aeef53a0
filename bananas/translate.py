"""redis-py's errors as Bananas errors: the one place the SDK's boundary translates them.

Callers never need to import redis-py to handle a failure: refused credentials are
:class:`BananasAuthenticationError`, an unreachable server (or every node of a
cluster) :class:`BananasConnectionError`, a write refused at ``maxmemory``
:class:`RedisOutOfMemoryError`, anything else :class:`BananasError`.
"""

from __future__ import annotations

import redis
from redis.exceptions import RedisClusterException

from bananas.errors import (
    BananasAuthenticationError,
    BananasConnectionError,
    BananasError,
    RedisOutOfMemoryError,
)

__all__ = ["REDIS_ERRORS", "translate"]

#: Every error redis-py raises (its cluster client's start-up error is not a RedisError).
REDIS_ERRORS = (redis.RedisError, RedisClusterException)
#: What Redis answers when the credentials are wrong or missing (redis-py raises some of
#: them as a ConnectionError, some as a ResponseError).
_AUTH_MARKS = ("WRONGPASS", "NOAUTH", "invalid username-password", "already authenticated")


def translate(exc: Exception, where: str) -> BananasError:
    """A redis-py error as a Bananas one: :class:`BananasAuthenticationError` for refused
    credentials, :class:`BananasConnectionError` when Redis (or every cluster node) can't
    be reached, else :class:`BananasError`. ``where`` is the masked URL."""
    text = str(exc)
    if isinstance(exc, redis.AuthenticationError) or any(m in text for m in _AUTH_MARKS):
        return BananasAuthenticationError(
            f"Redis at {where} refused the credentials: {text} "
            "(check the user and password in the URL)"
        )
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError | RedisClusterException):
        return BananasConnectionError(f"cannot reach Redis at {where}: {text}")
    if isinstance(exc, redis.exceptions.OutOfMemoryError) or text.startswith("OOM"):
        return RedisOutOfMemoryError(
            f"Redis at {where} is at its maxmemory limit and refused work that needs "
            f"memory; nothing was written ({text})"
        )
    return BananasError(f"Redis at {where} refused a command: {text}")
