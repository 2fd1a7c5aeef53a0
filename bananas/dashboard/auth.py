"""Who is asking, what they may do, and CSRF tokens.

Every request is resolved to a :class:`Principal` (a name and a :class:`Role`) or to
nobody, by the configured :class:`AuthMode`:

- ``token``: ``Authorization: Bearer <token>``, or a signed session cookie that the
  sign-in page sets after the token was typed once (the token itself is never stored
  in the cookie);
- ``basic``: ``Authorization: Basic`` checked against the configured users;
- ``header``: the user named by a trusted header that an authenticating proxy sets
  (the dashboard must then be reachable only through that proxy; ``trusted_proxies``
  ignores the header from any other peer address);
- ``none``: everyone is ``admin`` (or ``read``).

Nobody gets 401 (pages show the sign-in form or the basic-auth prompt); a read-only
person who tries an action gets 403. Every POST must carry a CSRF token, an HMAC of the
principal's name under the signing key, in the ``X-CSRF-Token`` header or a ``csrf``
form field: a page embeds it, a cross-site form cannot know it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import time
from dataclasses import dataclass

from starlette.requests import Request

from bananas.dashboard.settings import AuthMode, DashboardSettings, Role

SESSION_COOKIE = "bananas_session"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True, slots=True)
class Principal:
    """A signed-in person (or the anonymous user of auth mode ``none``)."""

    name: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


def _sign(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


class Authenticator:
    """Resolves requests to principals and issues and checks sessions and CSRF tokens."""

    def __init__(self, settings: DashboardSettings) -> None:
        self.settings = settings
        self.key = settings.signing_key()
        self._proxies = [ipaddress.ip_network(n, strict=False) for n in settings.trusted_proxies]
        self._tokens: list[tuple[bytes, Role, str]] = [
            (hashlib.sha256(t.encode()).digest(), Role.ADMIN, f"token-admin-{i + 1}")
            for i, t in enumerate(settings.admin_tokens)
        ] + [
            (hashlib.sha256(t.encode()).digest(), Role.READ, f"token-read-{i + 1}")
            for i, t in enumerate(settings.read_tokens)
        ]

    # -- who is asking ----------------------------------------------------------------------

    def principal(self, request: Request) -> Principal | None:
        """The principal of ``request``, or None when it is not authenticated."""
        mode = self.settings.auth
        if mode is AuthMode.NONE:
            role = Role.READ if self.settings.read_only else Role.ADMIN
            return Principal("anonymous", role)
        if mode is AuthMode.HEADER:
            return self._from_header(request)
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if mode is AuthMode.BASIC:
            return self._from_basic(credentials) if scheme.lower() == "basic" else None
        if scheme.lower() == "bearer":
            return self.check_token(credentials.strip())
        return self._from_session(request.cookies.get(SESSION_COOKIE, ""))

    def check_token(self, token: str) -> Principal | None:
        """The principal a token signs in as, or None (constant time per configured token)."""
        digest = hashlib.sha256(token.encode()).digest()
        found: Principal | None = None
        for known, role, name in self._tokens:
            if hmac.compare_digest(known, digest) and found is None:
                found = Principal(name, role)
        return found

    def _from_basic(self, credentials: str) -> Principal | None:
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        name, sep, password = decoded.partition(":")
        if not sep:
            return None
        found: Principal | None = None
        for user in self.settings.users:
            same_name = hmac.compare_digest(user.name.encode(), name.encode())
            same_password = hmac.compare_digest(user.password.encode(), password.encode())
            if same_name and same_password and found is None:
                found = Principal(user.name, user.role)
        return found

    def _trusted_peer(self, request: Request) -> bool:
        if not self._proxies:
            return True
        try:
            peer = ipaddress.ip_address(request.client.host if request.client else "")
        except ValueError:
            return False
        return any(peer in network for network in self._proxies)

    def _from_header(self, request: Request) -> Principal | None:
        if not self._trusted_peer(request):
            return None
        name = request.headers.get(self.settings.user_header, "").strip()
        if not name:
            return None
        groups = {
            g.strip() for g in request.headers.get(self.settings.groups_header, "").split(",")
        }
        admin = name in self.settings.admin_users or bool(groups & set(self.settings.admin_groups))
        return Principal(name, Role.ADMIN if admin else Role.READ)

    # -- sessions (token mode) -----------------------------------------------------------------

    def session_cookie(self, principal: Principal) -> str:
        """A signed cookie value naming ``principal`` until the session TTL passes."""
        expires = int(time.time() + self.settings.session_ttl)
        body = f"{principal.name}|{principal.role.value}|{expires}"
        return f"{body}|{_sign(self.key, 'session:' + body)}"

    def _from_session(self, cookie: str) -> Principal | None:
        body, _, signature = cookie.rpartition("|")
        if not body or not hmac.compare_digest(signature, _sign(self.key, "session:" + body)):
            return None
        name, role, expires = body.split("|")
        if int(expires) < time.time():
            return None
        return Principal(name, Role(role))

    # -- CSRF ---------------------------------------------------------------------------------

    def csrf_token(self, principal: Principal) -> str:
        """The CSRF token of ``principal``: pages embed it, every POST must send it back."""
        return _sign(self.key, f"csrf:{principal.name}:{principal.role.value}")

    def csrf_ok(self, principal: Principal, sent: str) -> bool:
        return bool(sent) and hmac.compare_digest(sent, self.csrf_token(principal))
