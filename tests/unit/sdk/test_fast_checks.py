"""The submit path's cheap forms of two checks give exactly what the plain forms gave."""

from __future__ import annotations

import os
import sys
import uuid
from unittest import mock

import pytest

from bananas.errors import InvalidJobError
from bananas.models import _IdSource, new_job_id
from bananas.validation import validate_job_name


def test_job_ids_are_what_uuid_makes_of_the_same_bytes() -> None:
    randomness = os.urandom(16 * 256 * 4)
    source = _IdSource()
    with mock.patch(
        "bananas.models.os.urandom",
        side_effect=[randomness[i : i + 4096] for i in range(0, len(randomness), 4096)],
    ):
        ids = [source() for _ in range(1024)]
    expected = [
        str(uuid.UUID(bytes=randomness[i : i + 16], version=4))
        for i in range(0, len(randomness), 16)
    ]
    assert ids == expected
    assert {uuid.UUID(i).version for i in ids} == {4}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_makes_ids_of_its_own() -> None:
    new_job_id()  # the parent's buffer now holds 255 unused ids
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(read_end)
        os.write(write_end, " ".join(new_job_id() for _ in range(10)).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        child_ids = set(pipe.read().split())
    os.waitpid(pid, 0)
    parent_ids = {new_job_id() for _ in range(10)}
    assert len(child_ids) == 10
    assert not child_ids & parent_ids


def _plain_rule(name: str) -> bool:
    return not any(c.isspace() or not c.isprintable() for c in name)


def test_the_job_name_rule_matches_the_per_character_rule_for_every_code_point() -> None:
    for code in range(sys.maxunicode + 1):
        c = chr(code)
        name = f"a{c}b"
        if _plain_rule(name):
            assert validate_job_name(name) == name
        else:
            with pytest.raises(InvalidJobError, match="whitespace or control"):
                validate_job_name(name)
