"""The submit options are spelled once: the keyword types match JobSpec's fields."""

from __future__ import annotations

import dataclasses
from typing import get_type_hints

from bananas.client import JobOptions, JobSpec, SubmitOptions


def test_submit_options_are_jobspecs_optional_fields() -> None:
    fields = {f.name for f in dataclasses.fields(JobSpec)} - {"name", "payload"}
    assert set(get_type_hints(SubmitOptions)) == fields
    assert set(get_type_hints(JobOptions)) == fields - {"timeout"}
