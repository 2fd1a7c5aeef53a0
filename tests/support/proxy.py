"""A TCP proxy in front of Redis that loses replies on purpose.

:class:`ReplyDroppingProxy` relays bytes both ways between each client connection and
the server. When a chunk the client sends contains ``marker`` (the SHA-1 of one
script, so the proxy recognises that script's EVALSHA) it draws a number, and with
probability ``drop_rate`` it lets the command through to Redis, waits for Redis to
answer, throws the answer away and resets both sockets. The command *ran*; the client
only sees a dropped connection, as after a network fault between the reply and the
client. ``dropped`` counts the replies lost that way.

It runs on threads (one acceptor, two pumps per connection) so that a test written as
plain sync code can start and stop it; ``close`` stops every thread and socket.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
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
