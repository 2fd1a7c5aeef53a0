"""``bananas dashboard``: its flags, and serving the app with uvicorn.

``bananas.cli`` only registers the subcommand (:func:`add_arguments`) and calls
:func:`run`, so the CLI keeps working without the ``dashboard`` extra installed.
Every flag has an environment variable (``BANANAS_DASHBOARD_*``); a flag wins.
"""

from __future__ import annotations

import argparse
import signal
from dataclasses import replace

from bananas.dashboard.settings import AuthMode, DashboardSettings, parse_user
from bananas.errors import ConfigError


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``bananas dashboard``."""
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8089, help="port (default 8089)")
    p.add_argument(
        "--auth",
        choices=["none", "token", "basic", "header"],
        help="how people sign in (env BANANAS_DASHBOARD_AUTH, default none)",
    )
    p.add_argument(
        "--admin-token",
        action="append",
        default=[],
        help="token mode: a token that signs in as admin (repeat; env "
        "BANANAS_DASHBOARD_ADMIN_TOKENS)",
    )
    p.add_argument(
        "--read-token",
        action="append",
        default=[],
        help="token mode: a read-only token (repeat; env BANANAS_DASHBOARD_READ_TOKENS)",
    )
    p.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="NAME:PASSWORD[:ROLE]",
        help="basic mode: an account, role read or admin (repeat; env BANANAS_DASHBOARD_USERS)",
    )
    p.add_argument("--user-header", help="header mode: header naming the user (X-Forwarded-User)")
    p.add_argument("--groups-header", help="header mode: header listing groups")
    p.add_argument(
        "--admin-user", action="append", default=[], help="header mode: an admin user (repeat)"
    )
    p.add_argument(
        "--admin-group", action="append", default=[], help="header mode: an admin group (repeat)"
    )
    p.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="CIDR",
        help="header mode: only this network's peers may set the headers (repeat; env "
        "BANANAS_DASHBOARD_TRUSTED_PROXIES)",
    )
    p.add_argument("--read-only", action="store_true", help="auth none: nobody may act")
    p.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="allow a non-loopback --host with --auth none (anyone reaching it is admin)",
    )
    p.add_argument("--live-interval", type=float, help="seconds between live updates (2)")
    p.add_argument("--scan-limit", type=int, help="most jobs one search looks at (10000)")
    p.add_argument("--secure-cookies", action="store_true", help="session cookie over HTTPS only")
    p.add_argument(
        "--no-kubernetes", action="store_true", help="no Kubernetes page (pools, schedules)"
    )
    p.add_argument("--kubeconfig", help="kubeconfig for the Kubernetes page (default: in-cluster)")
    p.add_argument(
        "--kube-namespace",
        action="append",
        help="namespace the Kubernetes page lists (repeat; default every namespace)",
    )


def settings_from(args: argparse.Namespace) -> DashboardSettings:
    """DashboardSettings from the environment, then the flags."""
    from bananas.config import Settings

    settings = DashboardSettings.from_env()
    changes: dict[str, object] = {}
    base = Settings.from_env()
    changes["redis_url"] = args.redis_url or settings.redis_url or base.redis_url
    changes["prefix"] = base.prefix
    if args.auth:
        changes["auth"] = AuthMode(args.auth)
    for flag, name in (
        ("admin_token", "admin_tokens"),
        ("read_token", "read_tokens"),
        ("admin_user", "admin_users"),
        ("admin_group", "admin_groups"),
        ("trusted_proxy", "trusted_proxies"),
    ):
        if getattr(args, flag):
            changes[name] = tuple(getattr(args, flag))
    if args.user:
        changes["users"] = tuple(parse_user(u) for u in args.user)
    if args.no_kubernetes:
        changes["kubernetes"] = False
    if args.kubeconfig:
        changes["kubeconfig"] = args.kubeconfig
    if args.kube_namespace:
        changes["kube_namespaces"] = tuple(args.kube_namespace)
    for flag in ("user_header", "groups_header", "live_interval", "scan_limit"):
        if getattr(args, flag) is not None:
            changes[flag] = getattr(args, flag)
    for flag in ("read_only", "insecure_no_auth", "secure_cookies"):
        if getattr(args, flag):
            changes[flag] = True
    return replace(settings, **changes)  # type: ignore[arg-type]  # checked by the flags' types


def run(args: argparse.Namespace) -> int:
    """Serve the dashboard until interrupted; raises ConfigError for unusable settings."""
    try:
        import uvicorn

        from bananas.dashboard.app import create_app
    except ImportError as exc:
        raise ConfigError(
            f"the dashboard needs its extra: pip install 'bananas-queue[dashboard]' ({exc.name})"
        ) from None
    settings = settings_from(args)
    settings.check()
    settings.check_bind(args.host)
    app = create_app(settings)
    print(
        f"bananas dashboard on http://{args.host}:{args.port}/ (auth {settings.auth.value})",
        flush=True,
    )
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again under the
    # handler that was there before; a no-op one makes that a clean exit 0, as a worker's.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0
