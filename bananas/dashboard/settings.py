"""The dashboard's configuration: where Redis is, how people sign in, how often pages refresh.

Built at the edge: by ``bananas dashboard`` from its flags and environment variables
(:meth:`DashboardSettings.from_env` reads the variables, flags win), or by hand by an
application that mounts :func:`bananas.dashboard.create_app`.
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass

from bananas.errors import ConfigError


class AuthMode(enum.StrEnum):
    """How the dashboard knows who is asking."""

    #: Nobody signs in; everyone is ``admin`` (or ``read`` with ``read_only``). Loopback only
    #: unless ``insecure_no_auth`` is set.
    NONE = "none"
    #: A bearer token (``Authorization: Bearer ...``, or typed once into the sign-in page).
    TOKEN = "token"
    #: HTTP basic auth against configured users.
    BASIC = "basic"
    #: A reverse proxy (an OAuth2 proxy) authenticates and names the user in a header.
    HEADER = "header"


class Role(enum.StrEnum):
    """What a signed-in person may do."""

    #: Sees every page; every action is refused (403).
    READ = "read"
    #: Sees every page and may act: cancel, requeue, delete, run now, bulk actions.
    ADMIN = "admin"


@dataclass(frozen=True)
class BasicUser:
    """One basic-auth account."""

    name: str
    password: str
    role: Role = Role.READ


@dataclass(frozen=True)
class DashboardSettings:
    """Everything the dashboard app is configured with."""

    #: Redis URL (``REDIS_URL``); shown masked, never with its password.
    redis_url: str | None = None
    #: Key prefix (``BANANAS_PREFIX``).
    prefix: str = "bananas"
    #: How people sign in (``BANANAS_DASHBOARD_AUTH``: none, token, basic, header).
    auth: AuthMode = AuthMode.NONE
    #: Token mode: tokens that sign in as admin (``BANANAS_DASHBOARD_ADMIN_TOKENS``, comma list).
    admin_tokens: tuple[str, ...] = ()
    #: Token mode: tokens that sign in read-only (``BANANAS_DASHBOARD_READ_TOKENS``).
    read_tokens: tuple[str, ...] = ()
    #: Basic mode: accounts (``BANANAS_DASHBOARD_USERS``: ``name:password:role``, comma list).
    users: tuple[BasicUser, ...] = ()
    #: Header mode: the header the proxy sets to the user's name (``X-Forwarded-User``).
    user_header: str = "X-Forwarded-User"
    #: Header mode: the header listing the user's groups, comma separated (``X-Forwarded-Groups``).
    groups_header: str = "X-Forwarded-Groups"
    #: Header mode: users who are admins (``BANANAS_DASHBOARD_ADMIN_USERS``).
    admin_users: tuple[str, ...] = ()
    #: Header mode: groups whose members are admins (``BANANAS_DASHBOARD_ADMIN_GROUPS``).
    admin_groups: tuple[str, ...] = ()
    #: Header mode: networks (CIDR) the proxy connects from; the headers of any other peer
    #: are ignored (``BANANAS_DASHBOARD_TRUSTED_PROXIES``). Empty trusts every peer.
    trusted_proxies: tuple[str, ...] = ()
    #: Auth mode ``none``: everyone is read-only instead of admin.
    read_only: bool = False
    #: Allow a non-loopback bind address with auth ``none`` (``--insecure-no-auth``).
    insecure_no_auth: bool = False
    #: Signs session cookies and CSRF tokens (``BANANAS_DASHBOARD_SECRET``). Default: derived
    #: from the configured credentials, so sessions survive a restart and rotating a token
    #: signs everyone out.
    secret: str = ""
    #: Seconds between two reads of Redis for one open live page (Server-Sent Events).
    live_interval: float = 2.0
    #: Jobs looked at, at most, by one search or "everything matching" filter.
    scan_limit: int = 10_000
    #: Rows per page of a job list.
    page_size: int = 50
    #: Seconds a sign-in session lasts (token mode).
    session_ttl: float = 12 * 3600.0
    #: Cookies only over HTTPS (set behind a TLS-terminating proxy).
    secure_cookies: bool = False
    #: Show the Kubernetes page: WorkerPools and CronSchedules read with the credentials
    #: ``bananas.kubeconfig`` finds (``--no-kubernetes`` turns it off; without access the
    #: page says why).
    kubernetes: bool = True
    #: A kubeconfig file to read them with (``BANANAS_DASHBOARD_KUBECONFIG``); None: the
    #: pod's ServiceAccount, else the default kubeconfig.
    kubeconfig: str | None = None
    #: Namespaces to list them in (``BANANAS_DASHBOARD_KUBE_NAMESPACES``); empty: every
    #: namespace (needs a ClusterRole; namespaced Roles need the namespaces named).
    kube_namespaces: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DashboardSettings:
        """Settings from ``BANANAS_DASHBOARD_*``, ``REDIS_URL`` and ``BANANAS_PREFIX``.

        Raises :class:`bananas.ConfigError` for a bad value.
        """
        e = os.environ if env is None else env

        def items(name: str) -> tuple[str, ...]:
            return tuple(x.strip() for x in e.get(name, "").split(",") if x.strip())

        try:
            auth = AuthMode(e.get("BANANAS_DASHBOARD_AUTH", "none").lower())
        except ValueError:
            raise ConfigError(
                "BANANAS_DASHBOARD_AUTH must be one of none, token, basic, header"
            ) from None
        return cls(
            redis_url=e.get("REDIS_URL") or None,
            prefix=e.get("BANANAS_PREFIX", "bananas"),
            auth=auth,
            admin_tokens=items("BANANAS_DASHBOARD_ADMIN_TOKENS"),
            read_tokens=items("BANANAS_DASHBOARD_READ_TOKENS"),
            users=tuple(parse_user(u) for u in items("BANANAS_DASHBOARD_USERS")),
            admin_users=items("BANANAS_DASHBOARD_ADMIN_USERS"),
            admin_groups=items("BANANAS_DASHBOARD_ADMIN_GROUPS"),
            trusted_proxies=items("BANANAS_DASHBOARD_TRUSTED_PROXIES"),
            secret=e.get("BANANAS_DASHBOARD_SECRET", ""),
            kubeconfig=e.get("BANANAS_DASHBOARD_KUBECONFIG") or None,
            kube_namespaces=items("BANANAS_DASHBOARD_KUBE_NAMESPACES"),
        )

    def signing_key(self) -> bytes:
        """The key that signs cookies and CSRF tokens."""
        if self.secret:
            return hashlib.sha256(self.secret.encode()).digest()
        material = "\0".join(
            [
                self.auth.value,
                *self.admin_tokens,
                *self.read_tokens,
                *(f"{u.name}:{u.password}:{u.role}" for u in self.users),
                self.prefix,
            ]
        )
        return hashlib.sha256(b"bananas-dashboard\0" + material.encode()).digest()

    def check(self) -> None:
        """Refuse settings that cannot work; raises :class:`bananas.ConfigError`."""
        if self.auth is AuthMode.TOKEN and not (self.admin_tokens or self.read_tokens):
            raise ConfigError("auth token needs --admin-token or --read-token")
        if self.auth is AuthMode.BASIC and not self.users:
            raise ConfigError("auth basic needs --user name:password:role")
        if self.live_interval < 0.2:
            raise ConfigError("--live-interval must be at least 0.2 s")
        if self.scan_limit < 1 or self.page_size < 1:
            raise ConfigError("scan_limit and page_size must be at least 1")
        for network in self.trusted_proxies:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ConfigError(f"--trusted-proxy {network!r} is not a network (CIDR)") from None

    def check_bind(self, host: str) -> None:
        """Refuse to serve a non-loopback address without auth unless told so explicitly."""
        if self.auth is not AuthMode.NONE or self.insecure_no_auth or is_loopback(host):
            return
        raise ConfigError(
            f"refusing to serve {host} without authentication: pick --auth token, basic or "
            "header, or pass --insecure-no-auth"
        )


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_user(text: str) -> BasicUser:
    """``name:password[:role]`` (role ``read`` or ``admin``, default read)."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise ConfigError(f"a user is name:password[:role], got {parts[0]!r}:...")
    try:
        role = Role(parts[2]) if len(parts) == 3 else Role.READ
    except ValueError:
        raise ConfigError(f"role of user {parts[0]!r} must be read or admin") from None
    return BasicUser(parts[0], parts[1], role)
