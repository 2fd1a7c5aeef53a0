"""The dashboard mounted inside an application's own Starlette app, under a path."""

from __future__ import annotations

import re

import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from bananas import AsyncClient
from bananas.dashboard import DashboardSettings, create_app
from tests.support.servers import RedisServer


async def test_every_link_honours_the_mount_path(single_redis: RedisServer, prefix: str) -> None:
    async with AsyncClient(single_redis.url, prefix=prefix) as client:
        await client.submit("ok", {"x": 1}, delay=60)
        dashboard = create_app(DashboardSettings(prefix=prefix), client=client)
        app = Starlette(
            routes=[
                Route("/", lambda request: PlainTextResponse("the application")),
                Mount("/ops/bananas", app=dashboard),
            ]
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            assert (await http.get("/")).text == "the application"
            page = (await http.get("/ops/bananas/jobs", params={"state": "scheduled"})).text
            links = re.findall(r'(?:href|src|action)="([^"]+)"', page)
            assert links and all(link.startswith("/ops/bananas/") for link in links), links
            assert '<meta name="base" content="/ops/bananas">' in page
            css = await http.get("/ops/bananas/static/dashboard.css")
            assert css.status_code == 200 and "text/css" in css.headers["content-type"]
            api = (await http.get("/ops/bananas/api/queues")).json()
            assert api["queues"][0]["scheduled"] == 1
