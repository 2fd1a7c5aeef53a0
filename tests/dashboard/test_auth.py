"""Access: 401 for nobody, 403 for read-only actions and CSRF-less POSTs, every auth mode."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

import httpx
import pytest

from bananas import Client
from bananas.dashboard import AuthMode, DashboardSettings
from bananas.dashboard.cli import settings_from
from bananas.errors import ConfigError
from tests.dashboard.conftest import ADMIN_TOKEN, READ_TOKEN, api
from tests.dashboard.server import DashboardServer

pytestmark = pytest.mark.timeout(60)
Start = Callable[[DashboardSettings], DashboardServer]

READ_APIS = [
    "/api/overview",
    "/api/queues",
    "/api/jobs",
    "/api/workers",
    "/api/schedules",
    "/api/audit",
    "/api/search?q=x",
    "/api/me",
    "/api/jobs/some-id",
    "/api/stream",
]


def test_unauthenticated_requests_get_401(dashboard: DashboardServer) -> None:
    with httpx.Client(base_url=dashboard.url) as http:
        for path in READ_APIS:
            assert http.get(path).status_code == 401, path
        page = http.get("/queues")
        assert page.status_code == 401 and 'name="token"' in page.text
        assert http.post("/api/bulk", json={}).status_code == 401
        wrong = http.get("/api/queues", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401


def test_read_only_sees_everything_but_cannot_act(dashboard: DashboardServer, sdk: Client) -> None:
    job_id = sdk.submit("ok", 1, delay=60)
    read = api(dashboard, READ_TOKEN)
    for path in READ_APIS[:-1]:
        assert read.get(path).status_code in (200, 404), path
    assert read.get("/api/me").json()["role"] == "read"
    refused = read.post(f"/api/jobs/{job_id}/actions/run_now")
    assert refused.status_code == 403 and "read-only" in refused.json()["error"]
    assert read.post("/api/bulk", json={"action": "delete", "ids": [job_id]}).status_code == 403
    assert read.post("/api/schedules/any/actions/trigger").status_code == 403
    assert sdk.queue_stats().scheduled == 1, "nothing moved"
    page = read.get(f"/jobs/{job_id}").text
    assert "data-action=" not in page
    jobs = read.get("/jobs", params={"state": "scheduled"}).text
    assert "data-bulk=" not in jobs and 'class="select"' not in jobs
    read.close()
    admin = api(dashboard, ADMIN_TOKEN)
    assert 'data-action="run_now"' in admin.get(f"/jobs/{job_id}").text
    admin.close()


def test_posts_without_the_csrf_token_are_refused(dashboard: DashboardServer, sdk: Client) -> None:
    job_id = sdk.submit("ok", 1, delay=60)
    with httpx.Client(
        base_url=dashboard.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ) as http:
        for headers in ({}, {"X-CSRF-Token": "forged"}):
            reply = http.post(f"/api/jobs/{job_id}/actions/delete", headers=headers)
            assert reply.status_code == 403 and "CSRF" in reply.json()["error"]
        assert sdk.get_job(job_id) is not None
        login = http.post("/login", data={"token": ADMIN_TOKEN})
        assert login.status_code == 403


def test_token_sign_in_sets_a_session_cookie(dashboard: DashboardServer) -> None:
    with httpx.Client(base_url=dashboard.url) as http:
        form = http.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
        bad = http.post("/login", data={"token": "wrong", "csrf": csrf})
        assert bad.status_code == 401
        good = http.post("/login", data={"token": READ_TOKEN, "csrf": csrf})
        assert good.status_code == 303
        cookie = http.cookies["bananas_session"]
        assert READ_TOKEN not in cookie
        assert http.get("/api/me").json()["role"] == "read"
        tampered = cookie.replace("|read|", "|admin|")
        http.cookies.clear()
        http.cookies.set("bananas_session", tampered)
        assert http.get("/api/me").status_code == 401


def test_basic_auth_with_roles(settings: DashboardSettings, start_dashboard: Start) -> None:
    server = start_dashboard(replace(settings, auth=AuthMode.BASIC))
    with httpx.Client(base_url=server.url) as http:
        nobody = http.get("/")
        assert nobody.status_code == 401 and nobody.headers["www-authenticate"].startswith("Basic")
        assert http.get("/api/me", auth=("ada", "wrong")).status_code == 401
        assert http.get("/api/me", auth=("ada", "pw-ada")).json()["role"] == "admin"
        bob = http.get("/api/me", auth=("bob", "pw-bob")).json()
        assert bob["role"] == "read"
        refused = http.post(
            "/api/bulk", json={}, auth=("bob", "pw-bob"), headers={"X-CSRF-Token": bob["csrf"]}
        )
        assert refused.status_code == 403


def test_trusted_header_mode(settings: DashboardSettings, start_dashboard: Start) -> None:
    s = replace(settings, auth=AuthMode.HEADER, admin_groups=("ops",))
    server = start_dashboard(s)
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/api/me").status_code == 401
        eve = http.get("/api/me", headers={"X-Forwarded-User": "eve"}).json()
        assert eve == {**eve, "name": "eve", "role": "read"}
        ops = {"X-Forwarded-User": "olga", "X-Forwarded-Groups": "dev, ops"}
        assert http.get("/api/me", headers=ops).json()["role"] == "admin"
    elsewhere = start_dashboard(replace(s, trusted_proxies=("10.0.0.0/8",)))
    local = start_dashboard(replace(s, trusted_proxies=("127.0.0.0/8",)))
    headers = {"X-Forwarded-User": "eve"}
    assert httpx.get(elsewhere.url + "/api/me", headers=headers).status_code == 401
    assert httpx.get(local.url + "/api/me", headers=headers).json()["name"] == "eve"
    with pytest.raises(ConfigError, match="CIDR"):
        replace(s, trusted_proxies=("not-a-net",)).check()


def test_no_secret_is_rendered(
    settings: DashboardSettings, start_dashboard: Start, single_redis: object
) -> None:
    url = settings.redis_url or ""
    with_password = url.replace("redis://", "redis://default:hunter2@")
    server = start_dashboard(replace(settings, redis_url=with_password))
    admin = api(server)
    for path in ("/", "/queues", "/workers", "/login", "/api/overview"):
        assert "hunter2" not in admin.get(path).text, path
    assert ADMIN_TOKEN not in admin.get("/").text
    admin.close()


def test_refuses_a_public_address_without_auth() -> None:
    s = DashboardSettings()
    s.check_bind("127.0.0.1")
    s.check_bind("::1")
    s.check_bind("localhost")
    with pytest.raises(ConfigError, match="--insecure-no-auth"):
        s.check_bind("0.0.0.0")
    replace(s, insecure_no_auth=True).check_bind("0.0.0.0")
    replace(s, auth=AuthMode.TOKEN, admin_tokens=("t",)).check_bind("0.0.0.0")


def test_cli_refuses_a_public_address_without_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    from bananas.cli import main

    monkeypatch.delenv("BANANAS_DASHBOARD_AUTH", raising=False)
    assert main(["dashboard", "--host", "0.0.0.0", "--port", "1"]) == 2
    assert main(["dashboard", "--auth", "token", "--port", "1"]) == 2, "a token is required"


def test_cli_flags_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from bananas.cli import build_parser

    monkeypatch.setenv("BANANAS_DASHBOARD_AUTH", "basic")
    monkeypatch.setenv("BANANAS_DASHBOARD_USERS", "ann:pw:admin")
    s = settings_from(build_parser().parse_args(["dashboard"]))
    assert s.auth is AuthMode.BASIC and s.users[0].name == "ann"
    s = settings_from(
        build_parser().parse_args(["dashboard", "--auth", "token", "--read-token", "r"])
    )
    assert s.auth is AuthMode.TOKEN and s.read_tokens == ("r",)
    s = settings_from(
        build_parser().parse_args(
            ["dashboard", "--no-kubernetes", "--kube-namespace", "a", "--kube-namespace", "b"]
        )
    )
    assert s.kubernetes is False and s.kube_namespaces == ("a", "b") and s.kubeconfig is None
    s = settings_from(build_parser().parse_args(["dashboard", "--kubeconfig", "k.yaml"]))
    assert s.kubernetes is True and s.kubeconfig == "k.yaml"


def test_healthz_needs_no_auth_and_says_nothing_else(dashboard: DashboardServer) -> None:
    with httpx.Client(base_url=dashboard.url) as http:
        assert http.get("/healthz").json() == {"ok": True}


def test_every_response_carries_the_security_headers(dashboard: DashboardServer) -> None:
    with httpx.Client(base_url=dashboard.url) as http:
        for path in ("/", "/login", "/api/queues", "/static/dashboard.js", "/healthz"):
            headers = http.get(path).headers
            assert "script-src 'self'" in headers["content-security-policy"], path
            assert headers["x-frame-options"] == "DENY", path
            assert headers["x-content-type-options"] == "nosniff", path
