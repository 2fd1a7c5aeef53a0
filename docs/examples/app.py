"""The handler module of the README's walk-through (``bananas worker --app app``).

The README quotes this file from ``# app.py`` on; ``run_snippets.py`` checks that the
quote is verbatim, starts the README's worker command on it and runs the README's
client code against that worker.
"""

# app.py
from bananas import Job, PermanentError
from bananas.worker_runtime import Registry

registry = Registry()

@registry.handler("send_email")
async def send_email(job: Job) -> dict:          # async: runs on the event loop
    return {"sent_to": job.payload["to"]}

@registry.handler("process_image")
def process_image(job: Job) -> dict:             # sync: runs in a thread pool
    if "url" not in job.payload:
        raise PermanentError("no url")           # straight to the dead-letter queue
    return {"ok": True}                          # any other exception: retry with backoff

@registry.handler("send_reminder")
async def send_reminder(job: Job) -> None:
    print("reminding user", job.payload["user_id"])

@registry.handler("charge")
def charge(job: Job) -> str:
    return f"charged order {job.payload['order']}"

@registry.handler("resize")
def resize(job: Job) -> int:
    return job.payload["i"] * 2

@registry.handler("generate_report", timeout=60, max_retries=1)   # this handler's defaults
async def generate_report(job: Job) -> dict:
    return {"period": job.payload["period"], "rows": 42}

@registry.handler("cleanup")
async def cleanup(job: Job) -> None:
    print("cleaning up")

registry.cron("0 3 * * *", "cleanup", timezone="Europe/London")   # a cron schedule
