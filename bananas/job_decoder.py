"""A fast decoder for job records of the current shape, with pydantic as the judge.

A worker decodes every record it is delivered (``records.decode_job``), and
``Job.model_validate_json`` was the largest single cost of a no-op job: thirty fields,
two of them with Python validators or factories called from pydantic-core, and
the private-attribute set-up pydantic runs in Python on every instance.

:func:`fast_job` accepts only what is unambiguous: JSON parsed by the parser
pydantic itself uses (``pydantic_core.from_json``, so payload values, duplicate keys,
big integers and ``NaN`` come out exactly as pydantic would give them), only the
fields ``records.job_record`` writes, each of exactly the JSON type pydantic would
turn into the same value (a ``str`` for a ``str``, an ``int`` or a ``float`` for a
``float``, an ISO-8601 timestamp in UTC as written by this package for a
``datetime``...). Anything else (an unknown or live-state field, a missing name, a
number where text belongs, another time-zone offset, a key outside the routing-key
rule) makes it return None, and the caller validates the record with pydantic: so a
bad record is rejected by pydantic, with pydantic's reason, as before. The fast path
never accepts what pydantic rejects, and builds the same ``Job`` (the same field
values and types, the same ``model_fields_set``) for what it accepts; a table-driven
test compares the two over valid and hostile records
(``tests/unit/sdk/test_job_decoder.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic_core import PydanticUndefined, TzInfo, from_json

from bananas.models import Job, Priority
from bananas.routing import is_valid_routing_key

__all__ = ["fast_job"]

#: A checker's answer for a value the fast path does not take (pydantic decides).
_NO: Any = object()
#: The time zone pydantic gives a datetime parsed with a ``+00:00`` offset.
_UTC = TzInfo(0)
#: The timestamps ``records.job_record`` writes (orjson's ISO-8601 of a UTC datetime).
_ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{6})?\+00:00", re.ASCII)
#: Integers a float field takes as they are (pydantic's float of a bigger one may differ).
_EXACT_FLOAT_INT = 2**53
_PRIORITIES: dict[str, Priority] = {p.value: p for p in Priority}
#: Routing keys seen to follow the rule (bounded: a worker serves a few).
_GOOD_KEYS: set[str] = set()
_GOOD_KEYS_MAX = 1024
_object_setattr = object.__setattr__


def _str(value: Any) -> Any:
    return value if type(value) is str else _NO


def _optional_str(value: Any) -> Any:
    return value if value is None or type(value) is str else _NO


def _int(value: Any) -> Any:
    return value if type(value) is int else _NO


def _optional_int(value: Any) -> Any:
    return value if value is None or type(value) is int else _NO


def _bool(value: Any) -> Any:
    return value if type(value) is bool else _NO


def _float(value: Any) -> Any:
    kind = type(value)
    if kind is float:
        return value
    if kind is int and -_EXACT_FLOAT_INT <= value <= _EXACT_FLOAT_INT:
        return float(value)
    return _NO


def _optional_float(value: Any) -> Any:
    return None if value is None else _float(value)


def _anything(value: Any) -> Any:
    return value


def _list(value: Any) -> Any:
    return value if type(value) is list else _NO


def _str_list(value: Any) -> Any:
    if type(value) is not list:
        return _NO
    for item in value:
        if type(item) is not str:
            return _NO
    return value


def _str_dict(value: Any) -> Any:
    if type(value) is not dict:
        return _NO
    for key, item in value.items():
        if type(key) is not str or type(item) is not str:
            return _NO
    return value


def _priority(value: Any) -> Any:
    return _PRIORITIES.get(value, _NO) if type(value) is str else _NO


def _routing_key(value: Any) -> Any:
    if type(value) is not str:
        return _NO
    if value in _GOOD_KEYS:
        return value
    if not is_valid_routing_key(value):
        return _NO  # pydantic says why (the routing-key rule)
    if len(_GOOD_KEYS) < _GOOD_KEYS_MAX:
        _GOOD_KEYS.add(value)
    return value


def _datetime(value: Any) -> Any:
    if type(value) is not str or not _ISO_UTC.fullmatch(value):
        return _NO
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:  # a day or an hour out of range: pydantic says why
        return _NO
    return parsed.replace(tzinfo=_UTC)


def _optional_datetime(value: Any) -> Any:
    return None if value is None else _datetime(value)


#: Every field the fast path takes, and its checker: the value as pydantic would give
#: it, or :data:`_NO`. The live state (status, attempts, errors, progress) is not
#: among them: a record holding it goes to pydantic.
_CHECKS: dict[str, Callable[[Any], Any]] = {
    "id": _str,
    "name": _str,
    "description": _str,
    "payload": _anything,
    "priority": _priority,
    "routing_key": _routing_key,
    "created_at": _datetime,
    "updated_at": _datetime,
    "scheduled_for": _optional_datetime,
    "max_retries": _int,
    "max_retries_set": _bool,
    "timeout": _optional_float,
    "success_ttl": _float,
    "failure_ttl": _float,
    "group": _optional_str,
    "v": _int,
    "meta": _str_dict,
    "workflow_id": _optional_str,
    "node": _optional_int,
    "parent_results": _list,
    "parent_errors": _str_list,
}

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


def fast_job(record: str | bytes, live: dict[str, Any]) -> Job | None:
    """The :class:`Job` of ``record`` with ``live`` (fields of the live state, and the
    leased id) set over it, as ``Job.model_validate_json`` followed by those assignments
    would build it; or None when the record is not of the plain current shape (then the
    caller validates it with pydantic, which accepts or rejects it with its reason)."""
    try:
        data = from_json(record)
    except ValueError:
        return None
    if type(data) is not dict or type(data.get("name")) is not str:
        return None
    values = dict(_DEFAULTS)
    checks = _CHECKS
    for key, value in data.items():
        check = checks.get(key)
        if check is None:
            return None  # an unknown field, or live state written into the record
        got = check(value)
        if got is _NO:
            return None
        values[key] = got
    for key, factory in _FACTORIES.items():
        if key not in data and key not in live:
            values[key] = factory()
    values.update(live)
    job = Job.__new__(Job)
    _object_setattr(job, "__dict__", values)
    _object_setattr(job, "__pydantic_fields_set__", {*data, *live})
    _object_setattr(job, "__pydantic_extra__", None)
    _object_setattr(job, "__pydantic_private__", dict(_PRIVATE))
    return job
