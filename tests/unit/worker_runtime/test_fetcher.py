"""The fair rotation of the fetcher (``plan_fetch``), checked without Redis."""

from __future__ import annotations

import pytest

from bananas.worker_runtime.fetcher import FAIR_EVERY, FairTurn, plan_fetch

ROUTES = ("a", "b", "c")


def test_ordinary_fetches_keep_the_configured_order() -> None:
    for number in range(1, 4 * FAIR_EVERY):
        if number % FAIR_EVERY:
            assert plan_fetch(number, ROUTES).routes == ROUTES
            assert plan_fetch(number, ROUTES).fair is FairTurn.NONE


def test_fair_turns_rotate_the_starting_key() -> None:
    leaders = [plan_fetch(k * FAIR_EVERY, ROUTES).routes for k in range(1, 7)]
    assert leaders == [
        ("b", "c", "a"),
        ("c", "a", "b"),
        ("a", "b", "c"),
        ("b", "c", "a"),
        ("c", "a", "b"),
        ("a", "b", "c"),
    ]


def test_one_key_alternates_normal_first_and_low_first() -> None:
    modes = [plan_fetch(k * FAIR_EVERY, ("only",)).fair for k in range(1, 5)]
    assert modes == [FairTurn.LOW_FIRST, FairTurn.NORMAL_FIRST] * 2


def test_a_key_alternates_on_its_own_leading_turns() -> None:
    # Key "a" leads fair turns 3, 6, 9, ... (turn k starts at key k mod 3).
    modes = [plan_fetch(k * FAIR_EVERY, ROUTES).fair for k in (3, 6, 9, 12)]
    assert modes == [FairTurn.LOW_FIRST, FairTurn.NORMAL_FIRST] * 2


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_every_key_leads_both_ways_within_the_documented_bound(n: int) -> None:
    """docs/worker.md: a key's low (and normal) head waits at most 2 * FAIR_EVERY * n fetches."""
    routes = tuple(f"k{i}" for i in range(n))
    window = 2 * FAIR_EVERY * n
    plans = {m: plan_fetch(m, routes) for m in range(1, 6 * window)}
    for start in range(1, 4 * window, 7):
        led = {
            (plans[m].routes[0], plans[m].fair)
            for m in range(start, start + window)
            if plans[m].fair is not FairTurn.NONE
        }
        for key in routes:
            assert (key, FairTurn.NORMAL_FIRST) in led, (start, key)
            assert (key, FairTurn.LOW_FIRST) in led, (start, key)


def test_every_plan_visits_every_key_once() -> None:
    for number in range(1, 10 * FAIR_EVERY):
        assert sorted(plan_fetch(number, ROUTES).routes) == sorted(ROUTES)


def test_fair_modes_are_the_wire_values_of_fetch_lua() -> None:
    assert [int(m) for m in FairTurn] == [0, 1, 2]
    assert str(int(FairTurn.LOW_FIRST)) == "2"
