"""The key builder: every key of a route shares one hash tag."""

from __future__ import annotations

from bananas.keys import KeySpace
from bananas.models import Priority


def test_route_keys_share_one_hash_tag() -> None:
    r = KeySpace("bananas").route("gpu")
    keys = [
        *r.queues,
        r.jobs,
        r.leases,
        r.attempts,
        r.scheduled,
        r.dead,
        r.wake,
        r.result("j1"),
        r.notify("j1"),
    ]
    assert all("{gpu}" in k for k in keys)
    assert r.queue(Priority.HIGH) == "bananas:route:{gpu}:queue:high"
    assert KeySpace("x").leader("s") == "x:leader:{s}"
