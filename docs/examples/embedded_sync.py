"""A synchronous application with a Bananas worker running in a background thread."""

from bananas import Client
from bananas.config import Settings
from bananas.worker_runtime import build_worker
from tasks import registry

worker = build_worker(registry, Settings.from_env().with_changes(metrics_port=0))
worker.start_in_thread()  # returns once the worker serves; raises if Redis is away
try:
    with Client() as client:  # the application's own client
        result = client.submit_and_wait("process_data", {"rows": [1, 2, 3]}, timeout=10)
        print(result.status, result.result)
finally:
    worker.stop_in_thread()  # drains like SIGTERM, then returns
