"""The hand-off entry of single hop (``enqueue.lua`` writes it, ``parse_handoff`` reads it)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bananas.broker import Leased, parse_handoff


def test_an_entry_names_token_id_and_record() -> None:
    record = '{"id":"a b","payload":"x y"}'
    assert parse_handoff(f"3 3 a b{record}") == Leased("a b", record, 3)


@given(st.text(min_size=1), st.text(), st.integers(min_value=1, max_value=2**53))
def test_any_id_and_record_come_back_whole(job_id: str, record: str, token: int) -> None:
    # enqueue.lua counts the id's characters (UTF-8 lead bytes), as Python's len does.
    entry = f"{token} {len(job_id)} {job_id}{record}"
    assert parse_handoff(entry) == Leased(job_id, record, token)
