"""A fast decoder for job records of the current shape, with pydantic as the judge.

A worker decodes every record it is delivered (``records.decode_job``), and
``Job.model_validate_json`` was the largest single cost of a no-op job: thirty
fields, a Python validator (the routing-key rule) and Python default factories
called from pydantic-core, and the private-attribute set-up pydantic runs in Python
on every instance.

:func:`fast_job` validates the record against :class:`PlainRecord` instead: the
fields ``records.job_record`` writes and nothing else (no live state, no unknown
field), in pydantic's *strict* mode, entirely inside pydantic-core (no Python
callback). Strict mode accepts a subset of what ``Job``'s lax mode accepts (a
``str`` only for a ``str``, an ``int`` only for an ``int``, an ``int`` or a
``float`` for a ``float``...), parsed by the same JSON parser and the same datetime
and enum validators, so what it accepts comes out as the same values; the routing
key is checked with the rule ``Job`` applies (a set of keys already seen to pass).
The ``Job`` is then put together the way ``model_construct`` does, with the model's
defaults for the fields the record leaves out.

Anything it does not take (a ``ValidationError`` of the strict schema, a routing key
outside the rule) makes it return None, and the caller validates the record with
``Job`` itself: a bad record is rejected by pydantic, with pydantic's reason, as
before. A table-driven test compares the two paths over valid and hostile records
(``tests/unit/sdk/test_job_decoder.py``): never accepting what pydantic rejects, and
for what it accepts the same field values of the same types and the same
``model_fields_set``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, NotRequired

from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic_core import PydanticUndefined
from typing_extensions import TypedDict

from bananas.models import Job, Priority
from bananas.routing import is_valid_routing_key

__all__ = ["PlainRecord", "fast_job"]


class PlainRecord(TypedDict):
    """A job record as ``records.job_record`` writes it, each field of ``Job``'s type."""

    __pydantic_config__ = ConfigDict(strict=True, extra="forbid")  # type: ignore[misc]

    id: NotRequired[str]
    name: str
    description: NotRequired[str]
    payload: NotRequired[Any]
    priority: NotRequired[Priority]
    routing_key: NotRequired[str]  # and the routing-key rule, checked in fast_job
    created_at: NotRequired[datetime]
    updated_at: NotRequired[datetime]
    scheduled_for: NotRequired[datetime | None]
    max_retries: NotRequired[int]
    max_retries_set: NotRequired[bool]
    timeout: NotRequired[float | None]
    success_ttl: NotRequired[float]
    failure_ttl: NotRequired[float]
    group: NotRequired[str | None]
    v: NotRequired[int]
    meta: NotRequired[dict[str, str]]
    workflow_id: NotRequired[str | None]
    node: NotRequired[int | None]
    parent_results: NotRequired[list[Any]]
    parent_errors: NotRequired[list[str]]


#: pydantic-core's validator itself (``TypeAdapter.validate_json`` adds a Python layer).
_validate = TypeAdapter(PlainRecord).validator.validate_json
#: Routing keys seen to follow the rule (bounded: a worker serves a few).
_GOOD_KEYS: set[str] = set()
_GOOD_KEYS_MAX = 1024
_object_setattr = object.__setattr__

#: Every field's plain default, in the model's order (fields with a factory hold a
#: placeholder, replaced per job).
_DEFAULTS: dict[str, Any] = {
    name: None if field.default is PydanticUndefined else field.default
    for name, field in Job.model_fields.items()
}
#: Fields whose default is made per job (``id``, the timestamps, the lists and dicts).
_FACTORIES: dict[str, Callable[[], Any]] = {
    name: field.default_factory  # type: ignore[misc]
    for name, field in Job.model_fields.items()
    if field.default_factory is not None
}
#: Private attributes and their defaults (``Job._progress_sink``).
_PRIVATE: dict[str, Any] = {name: attr.default for name, attr in Job.__private_attributes__.items()}


#: Per shape of record and live state (their field names, in order): the fields marked
#: as set, and the factories of the fields left out. A worker sees a few shapes.
_SHAPES: dict[tuple[str, ...], tuple[frozenset[str], tuple[tuple[str, Callable[[], Any]], ...]]]
_SHAPES = {}
_SHAPES_MAX = 256


def _shape(
    given: tuple[str, ...],
) -> tuple[frozenset[str], tuple[tuple[str, Callable[[], Any]], ...]]:
    fields = frozenset(given)
    made = tuple((key, factory) for key, factory in _FACTORIES.items() if key not in fields)
    if len(_SHAPES) < _SHAPES_MAX:
        _SHAPES[given] = (fields, made)
    return fields, made


def _routing_key_ok(value: str) -> bool:
    if value in _GOOD_KEYS:
        return True
    if not is_valid_routing_key(value):
        return False  # pydantic says why (the routing-key rule)
    if len(_GOOD_KEYS) < _GOOD_KEYS_MAX:
        _GOOD_KEYS.add(value)
    return True


def fast_job(record: str | bytes, live: dict[str, Any]) -> Job | None:
    """The :class:`Job` of ``record`` with ``live`` (fields of the live state, and the
    leased id) set over it, as ``Job.model_validate_json`` followed by those assignments
    would build it; or None when the record is not of the plain current shape (then the
    caller validates it with pydantic, which accepts or rejects it with its reason)."""
    try:
        data: dict[str, Any] = _validate(record)
    except ValidationError:
        return None
    routing_key = data.get("routing_key")
    if routing_key is not None and not _routing_key_ok(routing_key):
        return None
    given = (*data, *live)
    fields, made = _SHAPES.get(given) or _shape(given)
    values = dict(_DEFAULTS)
    values.update(data)
    for key, factory in made:
        values[key] = factory()
    values.update(live)
    job = Job.__new__(Job)
    _object_setattr(job, "__dict__", values)
    _object_setattr(job, "__pydantic_fields_set__", set(fields))
    _object_setattr(job, "__pydantic_extra__", None)
    _object_setattr(job, "__pydantic_private__", dict(_PRIVATE))
    return job
