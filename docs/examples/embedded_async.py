"""An aiohttp application that runs a Bananas worker on its own event loop."""

from collections.abc import AsyncIterator

from aiohttp import web

from bananas import AsyncClient
from bananas.config import Settings
from bananas.worker_runtime import build_worker
from tasks import registry

CLIENT = web.AppKey("bananas", AsyncClient)


async def bananas_worker(app: web.Application) -> AsyncIterator[None]:
    client = AsyncClient()  # $REDIS_URL, else redis://localhost:6379
    # The app serves its own probes, so the worker's HTTP server stays off.
    settings = Settings.from_env().with_changes(metrics_port=0)
    worker = build_worker(registry, settings, client=client)
    await worker.start()  # raises BananasConnectionError if Redis is away
    app[CLIENT] = client
    yield
    await worker.stop()  # drains: running jobs get SHUTDOWN_TIMEOUT to finish
    await client.close()  # the worker never closes a client it was given


async def report(request: web.Request) -> web.Response:
    result = await request.app[CLIENT].submit_and_wait(
        "generate_report", {"start_date": "2025-01-01", "end_date": "2025-01-31"}, timeout=30
    )
    return web.json_response(result.result)


app = web.Application()
app.cleanup_ctx.append(bananas_worker)
app.router.add_get("/report", report)

if __name__ == "__main__":
    web.run_app(app, port=8080)
