"""The operator reads a Redis URL from its Secret at most every secret_cache_seconds."""

from __future__ import annotations

from typing import Any

from bananas.operator.config import OperatorConfig
from bananas.operator.context import OperatorContext
from bananas.operator.specs import RedisRef


class CountingKube:
    """Stands in for the Kubernetes boundary: counts the Secret reads."""

    def __init__(self) -> None:
        self.reads = 0
        self.url = "redis://one:6379/0"

    async def read_secret_value(self, namespace: str, name: str, key: str) -> str:
        self.reads += 1
        return self.url


async def test_secret_reads_are_cached_and_forgotten_on_failure() -> None:
    now = [1000.0]
    kube = CountingKube()
    ctx: Any = OperatorContext(
        config=OperatorConfig(secret_cache_seconds=30.0),
        configuration=None,  # type: ignore[arg-type]
        kube=kube,  # type: ignore[arg-type]
        clock=lambda: now[0],
    )
    ref = RedisRef.model_validate({})
    for _ in range(10):  # ten polls of pools sharing the Secret
        assert await ctx.redis_url("shop", ref) == "redis://one:6379/0"
    assert kube.reads == 1
    kube.url = "redis://two:6379/0"  # rotated
    now[0] += 29.0
    assert await ctx.redis_url("shop", ref) == "redis://one:6379/0"
    now[0] += 2.0
    assert await ctx.redis_url("shop", ref) == "redis://two:6379/0"
    assert kube.reads == 2
    ctx.forget_url("shop", ref)  # Redis failed: read the Secret again at once
    assert await ctx.redis_url("shop", ref) == "redis://two:6379/0"
    assert kube.reads == 3
    assert await ctx.redis_url("other", ref) and kube.reads == 4  # per namespace
