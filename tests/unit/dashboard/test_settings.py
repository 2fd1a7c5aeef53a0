"""The dashboard's settings and credentials: pure functions, no I/O."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bananas.dashboard.auth import Authenticator, Principal
from bananas.dashboard.settings import (
    AuthMode,
    BasicUser,
    DashboardSettings,
    Role,
    is_loopback,
    parse_user,
)
from bananas.errors import ConfigError


def test_parse_user() -> None:
    assert parse_user("ada:secret:admin") == BasicUser("ada", "secret", Role.ADMIN)
    assert parse_user("bob:pw") == BasicUser("bob", "pw", Role.READ)
    for bad in ("ada", ":pw", "ada::admin", "ada:pw:root", "a:b:c:d"):
        with pytest.raises(ConfigError):
            parse_user(bad)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.1", False),
        ("example.org", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_from_env() -> None:
    s = DashboardSettings.from_env(
        {
            "BANANAS_DASHBOARD_AUTH": "TOKEN",
            "BANANAS_DASHBOARD_ADMIN_TOKENS": "a1, a2",
            "BANANAS_DASHBOARD_USERS": "ann:pw:admin",
            "REDIS_URL": "redis://r:6379",
            "BANANAS_PREFIX": "p",
            "BANANAS_DASHBOARD_KUBECONFIG": "/etc/kube/config",
            "BANANAS_DASHBOARD_KUBE_NAMESPACES": "prod, staging",
        }
    )
    assert (s.kubernetes, s.kubeconfig) == (True, "/etc/kube/config")
    assert s.kube_namespaces == ("prod", "staging")
    assert s.auth is AuthMode.TOKEN and s.admin_tokens == ("a1", "a2")
    assert s.users == (BasicUser("ann", "pw", Role.ADMIN),)
    assert (s.redis_url, s.prefix) == ("redis://r:6379", "p")
    with pytest.raises(ConfigError, match="BANANAS_DASHBOARD_AUTH"):
        DashboardSettings.from_env({"BANANAS_DASHBOARD_AUTH": "oauth"})


def test_check_refuses_settings_that_cannot_work() -> None:
    with pytest.raises(ConfigError, match="admin-token"):
        DashboardSettings(auth=AuthMode.TOKEN).check()
    with pytest.raises(ConfigError, match="--user"):
        DashboardSettings(auth=AuthMode.BASIC).check()
    with pytest.raises(ConfigError, match="live-interval"):
        DashboardSettings(live_interval=0.01).check()


def test_signing_key_follows_the_credentials() -> None:
    a = DashboardSettings(auth=AuthMode.TOKEN, admin_tokens=("t1",))
    assert a.signing_key() == replace(a).signing_key(), "stable across restarts"
    assert a.signing_key() != replace(a, admin_tokens=("t2",)).signing_key()
    assert (
        replace(a, secret="s").signing_key()
        == replace(a, secret="s", read_tokens=("x",)).signing_key()
    )


def test_sessions_and_csrf_tokens_are_bound_to_the_principal() -> None:
    auth = Authenticator(DashboardSettings(auth=AuthMode.TOKEN, admin_tokens=("t",)))
    ada = Principal("ada", Role.ADMIN)
    cookie = auth.session_cookie(ada)
    assert auth._from_session(cookie) == ada
    assert auth._from_session(cookie.replace("|admin|", "|read|")) is None
    assert auth._from_session("garbage") is None
    token = auth.csrf_token(ada)
    assert auth.csrf_ok(ada, token)
    assert not auth.csrf_ok(Principal("ada", Role.READ), token)
    assert not auth.csrf_ok(ada, "") and not auth.csrf_ok(ada, token[:-1] + "0")
    assert auth.check_token("t") == Principal("token-admin-1", Role.ADMIN)
    assert auth.check_token("t ") is None


def test_expired_sessions_are_refused() -> None:
    auth = Authenticator(
        DashboardSettings(auth=AuthMode.TOKEN, admin_tokens=("t",), session_ttl=-1)
    )
    assert auth._from_session(auth.session_cookie(Principal("ada", Role.ADMIN))) is None
