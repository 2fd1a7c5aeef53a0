"""TCP proxies in front of Redis: one that loses replies on purpose, one that counts
the commands its clients send.

:class:`ReplyDroppingProxy` relays bytes both ways between each client connection and
the server. When a chunk the client sends contains ``marker`` (the SHA-1 of one
script, so the proxy recognises that script's EVALSHA) it draws a number, and with
probability ``drop_rate`` it lets the command through to Redis, waits for Redis to
answer, throws the answer away and resets both sockets. The command *ran*; the client
only sees a dropped connection, as after a network fault between the reply and the
client. ``dropped`` counts the replies lost that way.

:class:`CommandCountingProxy` relays everything and counts the commands its clients
send (each RESP array, or inline line, client to server, by name): what a program costs
Redis in commands it sent, whether they came one by one or in a pipeline, and without
``MONITOR``. A script's own calls are not sent, so they are not counted (``INFO
commandstats`` counts those too).

Both run on threads (one acceptor, two pumps per connection) so that a test written as
plain sync code can start and stop them; ``close`` stops every thread and socket.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field

from tests.support.ports import free_port

CHUNK = 65536


def _reset(sock: socket.socket) -> None:
    """Drop the connection at once: shut it down (which also wakes the pump thread
    blocked reading it), then close with an RST (SO_LINGER 0)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


@dataclass
class _Link:
    client: socket.socket
    server: socket.socket
    doomed: threading.Event = field(default_factory=threading.Event)

    def close(self) -> None:
        _reset(self.client)
        _reset(self.server)


@dataclass
class ReplyDroppingProxy:
    """Listen on a free port of 127.0.0.1 and relay to ``target_port``."""

    target_port: int
    marker: bytes
    drop_rate: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    port: int = 0
    dropped: int = 0
    seen: int = 0
    _listener: socket.socket | None = None
    _links: list[_Link] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closed: threading.Event = field(default_factory=threading.Event)

    def start(self) -> ReplyDroppingProxy:
        self.port = self.port or free_port()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(512)
        self._listener = listener
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                server.settimeout(None)
            except OSError:
                _reset(client)
                continue
            link = _Link(client, server)
            with self._lock:
                self._links.append(link)
            threading.Thread(target=self._upstream, args=(link,), daemon=True).start()
            threading.Thread(target=self._downstream, args=(link,), daemon=True).start()

    def _upstream(self, link: _Link) -> None:
        """Client to server; decide here whether the reply to this chunk is lost."""
        try:
            while data := link.client.recv(CHUNK):
                if self.marker in data:
                    with self._lock:
                        self.seen += 1
                        if self.rng.random() < self.drop_rate:
                            link.doomed.set()
                link.server.sendall(data)
        except OSError:
            pass
        link.close()

    def _downstream(self, link: _Link) -> None:
        """Server to client; a doomed link swallows the reply and is reset."""
        try:
            while data := link.server.recv(CHUNK):
                if link.doomed.is_set():
                    with self._lock:
                        self.dropped += 1
                    break
                link.client.sendall(data)
        except OSError:
            pass
        link.close()

    def close(self) -> None:
        self._closed.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            link.close()


def parse_commands(buffer: bytearray) -> list[str]:
    """The names (upper case) of the complete commands at the head of ``buffer``, which
    loses them; an incomplete command's bytes stay for the next chunk."""
    names: list[str] = []
    while buffer:
        if buffer[:1] != b"*":  # an inline command: one line
            end = buffer.find(b"\r\n")
            if end < 0:
                return names
            words = bytes(buffer[:end]).split()
            if words:
                names.append(words[0].decode("latin-1").upper())
            del buffer[: end + 2]
            continue
        end = buffer.find(b"\r\n")
        if end < 0:
            return names
        at, parts = end + 2, []
        for _ in range(int(buffer[1:end])):
            line_end = buffer.find(b"\r\n", at)
            if line_end < 0:
                return names
            size = int(buffer[at + 1 : line_end])
            if len(buffer) < line_end + 2 + size + 2:
                return names
            parts.append(bytes(buffer[line_end + 2 : line_end + 2 + size]))
            at = line_end + 2 + size + 2
        if parts:
            names.append(parts[0].decode("latin-1").upper())
        del buffer[:at]
    return names


@dataclass
class CommandCountingProxy:
    """Listen on a free port of 127.0.0.1, relay to ``target_port``, and count in
    ``sent`` (command name -> count) every command a client sends."""

    target_port: int
    port: int = 0
    sent: Counter[str] = field(default_factory=Counter)
    _listener: socket.socket | None = None
    _links: list[_Link] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closed: threading.Event = field(default_factory=threading.Event)

    def start(self) -> CommandCountingProxy:
        self.port = self.port or free_port()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, name="counting-accept", daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def snapshot(self) -> Counter[str]:
        """A copy of the counts so far (subtract two snapshots for what happened between)."""
        with self._lock:
            return Counter(self.sent)

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                server.settimeout(None)
            except OSError:
                _reset(client)
                continue
            link = _Link(client, server)
            with self._lock:
                self._links.append(link)
            threading.Thread(target=self._upstream, args=(link,), daemon=True).start()
            threading.Thread(target=self._downstream, args=(link,), daemon=True).start()

    def _upstream(self, link: _Link) -> None:
        """Client to server: count each complete command before passing its bytes on."""
        pending = bytearray()
        try:
            while data := link.client.recv(CHUNK):
                pending += data
                names = parse_commands(pending)
                with self._lock:
                    self.sent.update(names)
                link.server.sendall(data)
        except OSError:
            pass
        link.close()

    def _downstream(self, link: _Link) -> None:
        try:
            while data := link.server.recv(CHUNK):
                link.client.sendall(data)
        except OSError:
            pass
        link.close()

    def close(self) -> None:
        self._closed.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            link.close()
