"""The operation vocabulary: Redis round trips as data, with no I/O.

An *operation* (``Op[T]``) is a generator that yields :class:`Call` (one command or
script) or :class:`Batch` (several plain commands in one pipeline), receives each
reply, and returns its typed result ``T``. ``bananas.broker`` builds every queue
operation from this vocabulary; ``bananas.transport`` drives them on a sync or an
asyncio connection, which is why ``Client`` and ``AsyncClient`` share every line of
their logic.

Scripts are loaded once at import from ``bananas/scripts``, each with the shared
prelude (``_prelude.lua``: Redis' clock, key-type checks, write a result and notify,
pick a priority's queue, dead-letter) prepended, so a procedure two scripts need is
written once. A script's Redis 7 shebang line (``#!lua flags=allow-oom``, which lets
work that frees memory run when Redis is at ``maxmemory``) stays its first line.
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, TypeVar

T = TypeVar("T")


def _script_text(name: str) -> str:
    return files("bananas.scripts").joinpath(f"{name}.lua").read_text("utf-8")


#: The procedures every script may call, prepended to each script's own text.
PRELUDE = _script_text("_prelude")


class Script:
    """One Lua script from ``bananas/scripts`` with the prelude prepended, loaded once.

    ``sha`` is the SHA-1 of ``source`` (what EVALSHA names); ``name`` is the file's
    stem, which is also the name of the :class:`bananas.broker.Broker` method that runs it.
    """

    __slots__ = ("name", "sha", "source")

    def __init__(self, name: str) -> None:
        self.name = name
        text = _script_text(name)
        # A Redis 7 shebang (``#!lua flags=allow-oom``) must stay the first line.
        shebang = ""
        if text.startswith("#!"):
            shebang, _, text = text.partition("\n")
            shebang += "\n"
        self.source = shebang + PRELUDE + text
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()


@dataclass(slots=True)
class Call:
    """One command; ``script`` is set when ``args`` is an EVALSHA."""

    args: tuple[Any, ...]
    script: Script | None = None
    #: False for the one command that is not safe to send twice: the blocking pop of a
    #: worker's hand-off list (its reply is a job leased to that worker). A lane does not
    #: resend it on a fresh connection; the error reaches the fetcher, which recovers the
    #: job through its fetch record (``bananas.worker_runtime.fetcher``).
    resend: bool = True


@dataclass(slots=True)
class Batch:
    """Plain commands sent in one pipeline (not a transaction: each command stands alone)."""

    calls: list[Call]


Request = Call | Batch
Op = Generator[Request, Any, T]


def script_call(script: Script, keys: Sequence[str], argv: Sequence[Any]) -> Call:
    """A call running ``script`` with ``keys`` and ``argv``."""
    return Call(("EVALSHA", script.sha, len(keys), *keys, *argv), script)


def command(*args: Any) -> Call:
    """A call running one plain command."""
    return Call(args)
