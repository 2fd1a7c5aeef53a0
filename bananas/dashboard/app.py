"""The dashboard's ASGI app: pages, the JSON API they use, and the live stream.

``create_app(settings)`` returns a Starlette app that serves everything from Redis
alone, so any number of replicas can run and a restart loses nothing. It can run on
its own (``bananas dashboard``) or be mounted into an application's Starlette or
FastAPI app (``app.mount("/bananas", create_app(...))``); every link honours the
mount path.

Pages are server-rendered (Jinja2). Each page has a *live* block that
``/api/stream`` renders again every ``live_interval`` seconds and pushes to the
browser as a Server-Sent Event when it changed; the browser swaps it in place
(``static/dashboard.js``), keeping the selected checkboxes. Streams of the same view,
parameters and role share one read per interval (:class:`SnapshotCache`), so the
Redis load of a view does not grow with the number of people watching it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import jinja2
import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bananas.admin import JobState
from bananas.client import AsyncClient
from bananas.dashboard.actions import BULK_ACTIONS, Action, ActionError, Actions, Filter
from bananas.dashboard.auth import CSRF_HEADER, SESSION_COOKIE, Authenticator, Principal
from bananas.dashboard.data import Reader
from bananas.dashboard.kube import KubeReader
from bananas.dashboard.settings import AuthMode, DashboardSettings, Role
from bananas.errors import BananasConnectionError, BananasError, InvalidRoutingKeyError
from bananas.models import Priority, Schedule
from bananas.validation import validate_routing_key

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
Builder = Callable[[Request], Awaitable[dict[str, Any]]]

#: The cron leader lock's default name (the worker's ``LEADER_LEASE_NAME``).
LEADER_NAME = "bananas-scheduler"
#: A live view waits at least this many times its last render's duration between renders.
DUTY_FACTOR = 10
#: Largest search scan a request may ask for (the settings' ``scan_limit`` caps it too).
MAX_PAGE = 500


class SnapshotCache:
    """Rendered live blocks, shared by the streams of one view for one interval.

    It also remembers how long the last render took: a stream waits at least
    ``DUTY_FACTOR`` times that between two renders, so a view that is costly to read
    (hundreds of routing keys) keeps Redis busy for at most 1/``DUTY_FACTOR`` of the time.
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, str, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, key: str, render: Callable[[], Awaitable[str]]) -> tuple[str, float]:
        """The block and the interval to wait before asking again."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            found = self._entries.get(key)
            now = time.monotonic()
            if found and now - found[0] < found[2] * 0.9:
                return found[1], found[2]
            html = await render()
            took = time.monotonic() - now
            interval = max(self.ttl, took * DUTY_FACTOR)
            self._entries[key] = (now, html, interval)
            if len(self._entries) > 1000:  # keys of closed pages: drop the stalest
                oldest = min(self._entries, key=lambda k: self._entries[k][0])
                self._entries.pop(oldest, None)
                self._locks.pop(oldest, None)
            return html, interval


def _int(request: Request, name: str, default: int, *, low: int = 0, high: int = 10**9) -> int:
    try:
        value = int(request.query_params.get(name, default))
    except ValueError:
        value = default
    return min(max(value, low), high)


def _state(text: str | None) -> JobState:
    try:
        return JobState(text or "ready")
    except ValueError:
        raise ActionError(f"unknown state {text!r}") from None


def _priority(text: str | None) -> Priority | None:
    if not text:
        return None
    try:
        return Priority(text)
    except ValueError:
        raise ActionError(f"unknown priority {text!r}") from None


class Dashboard:
    """One dashboard: its client, auth, templates and handlers."""

    def __init__(
        self,
        settings: DashboardSettings,
        client: AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
        leader_name: str = LEADER_NAME,
    ) -> None:
        self.settings = settings
        self.client = client
        self.clock = clock
        self.leader_name = leader_name
        self.auth = Authenticator(settings)
        self.reader = Reader(client, clock=clock)
        self.kube = KubeReader(settings, clock=clock)
        self.actions = Actions(self.reader, scan_limit=settings.scan_limit, clock=clock)
        self.cache = SnapshotCache(settings.live_interval)
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("bananas.dashboard", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, default=str)
        self.views: dict[str, Builder] = {
            "overview": self.overview,
            "queues": self.queues,
            "jobs": self.jobs,
            "job": self.job,
            "workers": self.workers,
            "schedules": self.schedules,
            "audit": self.audit,
            "results": self.results,
            "kubernetes": self.kubernetes,
        }

    # -- auth wrappers -------------------------------------------------------------------------

    def _unauthenticated(self, request: Request) -> Response:
        mode = self.settings.auth
        headers = {"WWW-Authenticate": 'Basic realm="bananas"'} if mode is AuthMode.BASIC else {}
        if request.url.path.startswith(self._base(request) + "/api/") or mode is not AuthMode.TOKEN:
            return JSONResponse(
                {"error": "authentication required", "auth": mode.value},
                status_code=401,
                headers=headers,
            )
        return self.render(
            request, "login.html", {"message": "", "live": False}, status_code=401, who=None
        )

    def reader_endpoint(self, fn: Handler) -> Handler:
        """A GET endpoint anyone signed in may use."""

        async def endpoint(request: Request) -> Response:
            principal = self.auth.principal(request)
            if principal is None:
                return self._unauthenticated(request)
            request.state.principal = principal
            try:
                return await fn(request)
            except (ActionError, InvalidRoutingKeyError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            except BananasConnectionError as exc:
                return JSONResponse({"error": str(exc)}, status_code=503)

        return endpoint

    def admin_endpoint(self, fn: Handler) -> Handler:
        """A POST endpoint: signed in, CSRF token checked, admin role required."""

        async def endpoint(request: Request) -> Response:
            principal = self.auth.principal(request)
            if principal is None:
                return self._unauthenticated(request)
            if not self.auth.csrf_ok(principal, request.headers.get(CSRF_HEADER, "")):
                return JSONResponse({"error": "missing or wrong CSRF token"}, status_code=403)
            if not principal.is_admin:
                return JSONResponse({"error": "read-only users cannot act"}, status_code=403)
            request.state.principal = principal
            try:
                return await fn(request)
            except (ActionError, InvalidRoutingKeyError, ValueError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            except BananasConnectionError as exc:
                return JSONResponse({"error": str(exc)}, status_code=503)
            except BananasError as exc:
                return JSONResponse({"error": str(exc)}, status_code=409)

        return endpoint

    # -- rendering -----------------------------------------------------------------------------

    @staticmethod
    def _base(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    def _common(self, request: Request, who: Principal | None) -> dict[str, Any]:
        return {
            "base": self._base(request),
            "who": who,
            "is_admin": bool(who and who.is_admin),
            "csrf": self.auth.csrf_token(who) if who else self._login_csrf(),
            "redis": self.client.target.masked,
            "auth_mode": self.settings.auth.value,
            "live_interval": self.settings.live_interval,
            "scan_limit": self.settings.scan_limit,
            "now": datetime.fromtimestamp(self.clock()).strftime("%H:%M:%S"),
        }

    def _login_csrf(self) -> str:
        return self.auth.csrf_token(Principal("-login-", Role.READ))

    def render(
        self,
        request: Request,
        template: str,
        data: dict[str, Any],
        *,
        status_code: int = 200,
        who: Principal | None = None,
    ) -> HTMLResponse:
        who = who if who is not None else getattr(request.state, "principal", None)
        html = self.env.get_template(template).render({**self._common(request, who), **data})
        return HTMLResponse(html, status_code=status_code)

    def render_live(self, request: Request, view: str, data: dict[str, Any]) -> str:
        template = self.env.get_template(f"{view}.html")
        context = template.new_context(
            {**self._common(request, request.state.principal), **data, "view": view}
        )
        return "".join(template.blocks["live"](context))

    # -- views: each returns the data its page renders and its API returns ------------------------

    async def routes(self) -> list[str]:
        return await self.reader.run(self.client.broker.routes())

    async def overview(self, request: Request) -> dict[str, Any]:
        return await self.reader.overview_view(_int(request, "window", 60))

    async def queues(self, request: Request) -> dict[str, Any]:
        return await self.reader.queues_view()

    async def jobs(self, request: Request) -> dict[str, Any]:
        q = request.query_params
        routes = await self.routes()
        rk = validate_routing_key(q.get("routing_key") or (routes[0] if routes else "default"))
        state = _state(q.get("state"))
        count = _int(request, "count", self.settings.page_size, low=1, high=MAX_PAGE)
        page = _int(request, "page", 1, low=1)
        data = await self.reader.jobs_view(
            rk,
            state,
            offset=(page - 1) * count,
            count=count,
            priority=_priority(q.get("priority")) if state is JobState.READY else None,
            reverse=q.get("order") == "reverse",
        )
        data["routes"] = routes
        data["states"] = [s.value for s in JobState]
        data["bulk_actions"] = [a.value for a in BULK_ACTIONS[state]]
        return data

    async def job(self, request: Request) -> dict[str, Any]:
        job_id = request.path_params.get("job_id") or request.query_params.get("job_id", "")
        rk = request.query_params.get("routing_key") or None
        data = await self.reader.job_view(job_id, validate_routing_key(rk) if rk else None)
        return {"found": data is not None, "job_id": job_id, **(data or {})}

    async def workers(self, request: Request) -> dict[str, Any]:
        return await self.reader.workers_view(self.leader_name)

    async def schedules(self, request: Request) -> dict[str, Any]:
        return await self.reader.schedules_view(_next_slot)

    async def audit(self, request: Request) -> dict[str, Any]:
        count = _int(request, "count", self.settings.page_size, low=1, high=MAX_PAGE)
        page = _int(request, "page", 1, low=1)
        data = await self.reader.audit_view((page - 1) * count, count)
        data["page"] = page
        data["pages"] = max(1, -(-data["total"] // count))
        return data

    async def kubernetes(self, request: Request) -> dict[str, Any]:
        return await self.kube.view()

    async def results(self, request: Request) -> dict[str, Any]:
        q = request.query_params
        routes = await self.routes()
        rk = validate_routing_key(q.get("routing_key") or (routes[0] if routes else "default"))
        count = _int(request, "count", self.settings.page_size, low=1, high=MAX_PAGE)
        page = _int(request, "page", 1, low=1)
        data = await self.reader.results_view(
            rk, offset=(page - 1) * count, count=count, oldest_first=q.get("order") == "reverse"
        )
        data["routes"] = routes
        data["states"] = [s.value for s in JobState]
        return data

    async def search(self, request: Request) -> dict[str, Any]:
        q = request.query_params
        query = (q.get("q") or "").strip()
        routes = await self.routes()
        rk = validate_routing_key(q.get("routing_key") or (routes[0] if routes else "default"))
        state = _state(q.get("state"))
        limit = _int(
            request, "limit", self.settings.scan_limit, low=1, high=self.settings.scan_limit
        )
        data: dict[str, Any] = {
            "query": query,
            "routing_key": rk,
            "state": state.value,
            "routes": routes,
            "states": [s.value for s in JobState],
            "limit": limit,
            "by_id": None,
            "jobs": [],
            "scanned": 0,
            "total": 0,
            "complete": True,
            "bulk_actions": [a.value for a in BULK_ACTIONS[state]],
        }
        if not query:
            return data
        by_id = await self.client.get_job(query)
        if by_id is not None:
            data["by_id"] = by_id.model_dump(mode="json")
        found = await self.actions.scan(Filter(rk, state, query), limit)
        now = self.clock()
        data.update(
            jobs=[self.reader.job_row(r, now) for r in found.rows],
            scanned=found.scanned,
            total=found.total,
            complete=found.complete,
        )
        return data

    # -- handlers ------------------------------------------------------------------------------

    def page_handler(self, view: str, template: str | None = None) -> Handler:
        build = self.views.get(view) or getattr(self, view)

        async def handler(request: Request) -> Response:
            data = await build(request)
            status = 404 if data.get("found") is False else 200
            live = view in self.views
            return self.render(
                request,
                template or f"{view}.html",
                {
                    **data,
                    "view": view,
                    "params": request.url.query,
                    "live": live,
                    # The stream sends nothing until the block differs from this page's.
                    "live_hash": _digest(self.render_live(request, view, data)) if live else "",
                },
                status_code=status,
            )

        return handler

    def api_handler(self, view: str) -> Handler:
        build = self.views.get(view) or getattr(self, view)

        async def handler(request: Request) -> Response:
            data = await build(request)
            status = 404 if data.get("found") is False else 200
            return Response(
                orjson.dumps(data, default=str), status_code=status, media_type="application/json"
            )

        return handler

    async def me(self, request: Request) -> Response:
        who: Principal = request.state.principal
        return JSONResponse(
            {"name": who.name, "role": who.role.value, "csrf": self.auth.csrf_token(who)}
        )

    async def stream(self, request: Request) -> Response:
        view = request.query_params.get("view", "overview")
        build = self.views.get(view)
        if build is None:
            return JSONResponse({"error": f"no live view {view!r}"}, status_code=400)
        who: Principal = request.state.principal
        params = "&".join(
            f"{k}={v}" for k, v in sorted(request.query_params.items()) if k != "since"
        )
        key = f"{who.role.value}|{request.url.path}|{params}"

        async def render() -> str:
            return self.render_live(request, view, await build(request))

        async def events() -> AsyncIterator[bytes]:
            last = request.query_params.get("since", "")
            yield f"retry: {int(self.settings.live_interval * 1000)}\n\n".encode()
            while not await request.is_disconnected():
                wait = self.settings.live_interval
                try:
                    html, wait = await self.cache.get(key, render)
                except BananasError as exc:
                    yield b"event: problem\ndata: " + orjson.dumps({"error": str(exc)}) + b"\n\n"
                except Exception:  # a bug must not kill the stream silently: say so, keep going
                    log.exception("dashboard: rendering the live %s view failed", view)
                    yield b'event: problem\ndata: {"error": "internal error"}\n\n'
                else:
                    digest = _digest(html)
                    if digest != last:
                        last = digest
                        yield b"event: update\ndata: " + orjson.dumps({"html": html}) + b"\n\n"
                    else:
                        yield b"event: tick\ndata: {}\n\n"
                await asyncio.sleep(wait)

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    # -- actions -------------------------------------------------------------------------------

    async def job_action(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        try:
            action = Action(request.path_params["action"])
        except ValueError:
            raise ActionError(f"unknown action {request.path_params['action']!r}") from None
        given = request.query_params.get("routing_key") or None
        job = await self.client.get_job(job_id, validate_routing_key(given) if given else None)
        if job is None:
            return JSONResponse({"error": f"no job {job_id}"}, status_code=404)
        if job.workflow_id and action in (Action.CANCEL, Action.DELETE):
            return JSONResponse(
                {"error": f"{job_id} is a step of workflow {job.workflow_id}: cancel the workflow"},
                status_code=409,
            )
        rk = job.routing_key
        done = await self.actions.on_ids(action, rk, [job_id])
        await self.actions.audit(
            request.state.principal, action.value, done, routing_key=rk, ids=[job_id]
        )
        return JSONResponse({"action": action.value, "count": done, "job_id": job_id})

    async def workflow_action(self, request: Request) -> Response:
        """Cancel a workflow (every step not yet finished)."""
        workflow_id, action = request.path_params["workflow_id"], request.path_params["action"]
        if action != "cancel":
            raise ActionError(f"unknown workflow action {action!r}")
        done = await self.client.cancel_workflow(workflow_id)
        await self.actions.audit(
            request.state.principal, "workflow cancel", int(done), ids=[workflow_id]
        )
        return JSONResponse({"action": action, "workflow_id": workflow_id, "cancelled": done})

    async def queue_action(self, request: Request) -> Response:
        """Pause or resume a routing key, when the SDK has ``pause``/``resume`` (else 501)."""
        rk = validate_routing_key(request.path_params["routing_key"])
        action = request.path_params["action"]
        if action not in ("pause", "resume"):
            raise ActionError(f"unknown queue action {action!r}")
        method = getattr(self.client, action, None)
        if not callable(method):
            return JSONResponse({"error": f"this SDK cannot {action} queues"}, status_code=501)
        await method(rk)
        await self.actions.audit(request.state.principal, f"queue {action}", 0, routing_key=rk)
        return JSONResponse({"action": action, "routing_key": rk})

    async def schedule_action(self, request: Request) -> Response:
        """Suspend, resume or trigger one cron schedule registered in Redis."""
        schedule_id, action = request.path_params["schedule_id"], request.path_params["action"]
        found = next((s for s in await self.client.schedules() if s.id == schedule_id), None)
        if found is None:
            return JSONResponse({"error": f"no schedule {schedule_id}"}, status_code=404)
        reply: dict[str, Any] = {"action": action, "schedule_id": schedule_id}
        if action in ("suspend", "resume"):
            await self.client.register_schedule(
                found.model_copy(update={"enabled": action == "resume"})
            )
        elif action == "trigger":
            stamp = datetime.fromtimestamp(self.clock(), UTC).strftime("%Y%m%dT%H%M%S.%fZ")
            reply["job_id"] = await self.client.submit(
                found.job,
                found.payload,
                priority=found.priority,
                routing_key=found.routing_key,
                max_retries=found.max_retries,
                job_id=f"{found.id}:manual:{stamp}",
            )
        else:
            raise ActionError(f"unknown schedule action {action!r}")
        await self.actions.audit(
            request.state.principal,
            f"schedule {action}",
            1,
            routing_key=found.routing_key,
            ids=[reply.get("job_id", schedule_id)],
        )
        return JSONResponse(reply)

    async def _body(self, request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise ActionError("the body must be JSON") from None
        if not isinstance(body, dict):
            raise ActionError("the body must be a JSON object")
        return body

    @staticmethod
    def _filter(body: dict[str, Any]) -> Filter:
        raw = body.get("filter") or {}
        state = _state(raw.get("state"))
        return Filter(
            validate_routing_key(str(raw.get("routing_key") or "default")),
            state,
            str(raw.get("query") or "").strip(),
            _priority(raw.get("priority")) if state is JobState.READY else None,
        )

    async def bulk_preview(self, request: Request) -> Response:
        f = self._filter(await self._body(request))
        data = await self.actions.preview(f)
        data["filter"] = f.as_dict()
        data["actions"] = [a.value for a in BULK_ACTIONS[f.state]]
        return JSONResponse(data)

    async def bulk(self, request: Request) -> Response:
        body = await self._body(request)
        try:
            action = Action(str(body.get("action")))
        except ValueError:
            raise ActionError(f"unknown action {body.get('action')!r}") from None
        who: Principal = request.state.principal
        expected = body.get("expected")
        if "ids" in body:
            ids = [str(i) for i in body["ids"]][: self.settings.scan_limit]
            rk = validate_routing_key(str(body.get("routing_key") or "default"))
            done = await self.actions.on_ids(action, rk, ids)
            await self.actions.audit(who, f"bulk {action.value}", done, routing_key=rk, ids=ids)
            return JSONResponse({"action": action.value, "count": done, "selected": len(ids)})
        f = self._filter(body)
        done = await self.actions.on_filter(action, f)
        await self.actions.audit(
            who,
            f"bulk {action.value} (all matching)",
            done,
            routing_key=f.routing_key,
            filter_=f,
            expected=expected if isinstance(expected, int) else None,
        )
        return JSONResponse({"action": action.value, "count": done, "filter": f.as_dict()})

    # -- sign-in (token mode) ------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            return self.render(request, "login.html", {"message": "", "live": False}, who=None)
        form = await request.form()
        if not self.auth.csrf_ok(Principal("-login-", Role.READ), str(form.get("csrf", ""))):
            return JSONResponse({"error": "missing or wrong CSRF token"}, status_code=403)
        who = self.auth.check_token(str(form.get("token", "")).strip())
        if who is None:
            return self.render(
                request,
                "login.html",
                {"message": "unknown token", "live": False},
                status_code=401,
                who=None,
            )
        response = RedirectResponse(self._base(request) + "/", status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            self.auth.session_cookie(who),
            max_age=int(self.settings.session_ttl),
            httponly=True,
            samesite="strict",
            secure=self.settings.secure_cookies,
            path=self._base(request) + "/" if self._base(request) else "/",
        )
        return response

    async def logout(self, request: Request) -> Response:
        response = RedirectResponse(self._base(request) + "/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=self._base(request) + "/" or "/")
        return response

    # -- the app -------------------------------------------------------------------------------

    def routes_table(self) -> list[Route | Mount]:
        read, act = self.reader_endpoint, self.admin_endpoint
        pages = [
            Route("/", read(self.page_handler("overview"))),
            Route("/queues", read(self.page_handler("queues"))),
            Route("/jobs", read(self.page_handler("jobs"))),
            Route("/jobs/{job_id}", read(self.page_handler("job"))),
            Route("/search", read(self.page_handler("search"))),
            Route("/workers", read(self.page_handler("workers"))),
            Route("/schedules", read(self.page_handler("schedules"))),
            Route("/audit", read(self.page_handler("audit"))),
            Route("/results", read(self.page_handler("results"))),
            Route("/kubernetes", read(self.page_handler("kubernetes"))),
        ]
        api = [
            Route(f"/api/{name}", read(self.api_handler(name)))
            for name in (
                "overview",
                "queues",
                "jobs",
                "results",
                "search",
                "workers",
                "schedules",
                "audit",
                "kubernetes",
            )
        ]
        api += [
            Route("/api/jobs/{job_id}", read(self.api_handler("job"))),
            Route("/api/me", read(self.me)),
            Route("/api/stream", read(self.stream)),
            Route("/api/jobs/{job_id}/actions/{action}", act(self.job_action), methods=["POST"]),
            Route("/api/bulk/preview", act(self.bulk_preview), methods=["POST"]),
            Route(
                "/api/workflows/{workflow_id}/actions/{action}",
                act(self.workflow_action),
                methods=["POST"],
            ),
            Route(
                "/api/queues/{routing_key}/actions/{action}",
                act(self.queue_action),
                methods=["POST"],
            ),
            Route(
                "/api/schedules/{schedule_id}/actions/{action}",
                act(self.schedule_action),
                methods=["POST"],
            ),
            Route("/api/bulk", act(self.bulk), methods=["POST"]),
            Route("/login", self.login, methods=["GET", "POST"]),
            Route("/healthz", self.healthz),
            Route("/logout", self.logout_guarded, methods=["POST"]),
        ]
        static = StaticFiles(packages=[("bananas.dashboard", "static")])
        return [*pages, *api, Mount("/static", app=static, name="static")]

    async def healthz(self, request: Request) -> Response:
        """Unauthenticated probe: 200 when Redis answers, else 503 (says nothing else)."""
        try:
            await self.client.ping()
        except BananasError:
            return JSONResponse({"ok": False}, status_code=503)
        return JSONResponse({"ok": True})

    async def logout_guarded(self, request: Request) -> Response:
        form = await request.form()
        who = self.auth.principal(request)
        if who is None or not self.auth.csrf_ok(who, str(form.get("csrf", ""))):
            return JSONResponse({"error": "missing or wrong CSRF token"}, status_code=403)
        return await self.logout(request)


#: Sent with every response: every asset is the package's own, nothing may be framed.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def _digest(html: str) -> str:
    return hashlib.blake2b(html.encode(), digest_size=12).hexdigest()


def _next_slot(schedule: Schedule, after: datetime) -> datetime:
    from bananas.worker_runtime.cron import next_slot

    return next_slot(schedule, after)


def create_app(
    settings: DashboardSettings | None = None,
    *,
    client: AsyncClient | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The dashboard as an ASGI app.

    ``settings`` default to :meth:`DashboardSettings.from_env`. Pass ``client`` to share
    an :class:`~bananas.AsyncClient` (the app then leaves closing it to you); otherwise
    the app opens one on ``settings.redis_url`` and closes it on shutdown. Raises
    :class:`bananas.ConfigError` for settings that cannot work.
    """
    settings = settings or DashboardSettings.from_env()
    settings.check()
    owned = client is None
    the_client = client or AsyncClient(settings.redis_url, prefix=settings.prefix)
    dashboard = Dashboard(settings, the_client, clock=clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await dashboard.kube.close()
            if owned:
                await the_client.close()

    app = Starlette(
        routes=dashboard.routes_table(),
        lifespan=lifespan,
        middleware=[Middleware(SecurityHeaders)],
    )
    app.state.dashboard = dashboard
    return app
