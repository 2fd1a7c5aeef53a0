"""The slow sweep's pace: every route in turn, at most ``rate`` looks a second."""

from __future__ import annotations

from bananas.worker_runtime.sweep import SlowSweep


def _looks(sweep: SlowSweep, routes: list[str], seconds: int, step: float = 0.5) -> list[str]:
    picked: list[str] = []
    now = 0.0
    while now <= seconds:
        picked += sweep.take(routes, now)
        now += step
    return picked


def test_few_routes_are_each_looked_at_once_a_period() -> None:
    routes = ["a", "b", "c"]
    picked = _looks(SlowSweep(period=60, rate=1.0), routes, 120)
    # one look as the first take, then 3 per 60 s: 7 over 120 s, in turn
    assert picked == ["a", "b", "c", "a", "b", "c", "a"]


def test_many_routes_cost_the_rate_and_no_more() -> None:
    routes = [f"k{i}" for i in range(500)]
    picked = _looks(SlowSweep(period=60, rate=0.25), routes, 400)
    assert 99 <= len(picked) <= 102, len(picked)  # 0.25 a second
    assert picked[:3] == ["k0", "k1", "k2"] and len(set(picked)) == len(picked)


def test_a_long_gap_does_not_end_in_a_burst() -> None:
    sweep = SlowSweep(period=60, rate=1.0, gap=2.0)
    routes = [f"k{i}" for i in range(100)]
    sweep.take(routes, 0.0)
    assert len(sweep.take(routes, 3600.0)) == 2  # two seconds' worth, not an hour's


def test_a_quiet_period_takes_its_share_at_once() -> None:
    sweep = SlowSweep(period=30, rate=0.5, gap=30)
    routes = [f"k{i}" for i in range(500)]
    first = sweep.take(routes, 0.0)
    second = sweep.take(routes, 30.0)
    assert (len(first), len(second)) == (15, 15)
    assert second[0] == "k15"
    assert sweep.take(["only"], 60.0) == ["only"]


def test_no_routes_no_looks() -> None:
    assert SlowSweep().take([], 10.0) == []
