"""The routing-key rule, written once: the check, its message and the ``RoutingKey`` type.

It sits below every other module (it imports only ``bananas.errors``), so the key
builder, the models, the settings and the operator's CRD specs all check a routing
key the same way without importing each other.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator

from bananas.errors import InvalidRoutingKeyError

_ROUTING_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ROUTING_KEY_RULE = "1-64 characters of letters, digits, '_' and '-'"


def is_valid_routing_key(routing_key: str) -> bool:
    """Return True when ``routing_key`` follows the routing-key rule."""
    # fullmatch, not match: ``$`` also matches before a trailing newline ("gpu\n").
    return bool(_ROUTING_KEY_RE.fullmatch(routing_key))


def validate_routing_key(routing_key: Any) -> str:
    """Return ``routing_key`` if it follows the rule (seed: ``ValidateRoutingKey``).

    Raises :class:`InvalidRoutingKeyError` (a ``ValueError``) naming the rule.
    """
    if not isinstance(routing_key, str) or not is_valid_routing_key(routing_key):
        raise InvalidRoutingKeyError(
            f"invalid routing key {routing_key!r}: a routing key is {ROUTING_KEY_RULE}"
        )
    return routing_key


#: A ``str`` that follows the routing-key rule; pydantic models check it on validation.
RoutingKey = Annotated[str, AfterValidator(validate_routing_key)]
