"""Reading maxmemory-policy from a real server: the policy itself, a cluster's worst
node, and None for a user whose ACL does not allow INFO."""

from __future__ import annotations

import uuid

import pytest
import redis
import redis.asyncio as aioredis

from bananas.eviction import aread_policy, read_policy
from tests.support.servers import RedisServer


def test_read_policy_of_a_server(single_redis: RedisServer) -> None:
    with single_redis.client() as r:
        assert read_policy(r) == "noeviction"


async def test_aread_policy_of_a_server(single_redis: RedisServer) -> None:
    r = aioredis.Redis(port=single_redis.port, decode_responses=True)
    try:
        assert await aread_policy(r) == "noeviction"
    finally:
        await r.aclose()


def test_a_user_without_info_reads_none(single_redis: RedisServer) -> None:
    user, password = f"noinfo-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    with single_redis.client() as admin:
        admin.execute_command("ACL", "SETUSER", user, "on", f">{password}", "~*", "+@all", "-info")
        try:
            with redis.Redis(
                port=single_redis.port, username=user, password=password, decode_responses=True
            ) as r:
                assert read_policy(r) is None
        finally:
            admin.execute_command("ACL", "DELUSER", user)


def test_a_connection_error_is_not_swallowed() -> None:
    with redis.Redis(port=1, socket_connect_timeout=0.5) as r, pytest.raises(redis.ConnectionError):
        read_policy(r)
