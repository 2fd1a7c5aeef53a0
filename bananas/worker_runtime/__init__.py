"""The worker runtime: handler registry, worker pool, scheduler, cron and health.

Applications import :class:`Registry` to register handlers and :class:`Worker` to
embed a worker; ``bananas worker`` and ``bananas scheduler`` run them as processes.
"""

from bananas.config import Settings, WorkerMode
from bananas.worker_runtime.cron import fire_id
from bananas.worker_runtime.executor import Executor
from bananas.worker_runtime.leader import LeaderElector, RedisLeaderElector
from bananas.worker_runtime.promoter import Promoter
from bananas.worker_runtime.registry import Registry
from bananas.worker_runtime.runner import build_worker, load_registry, serve
from bananas.worker_runtime.scheduler import CronScheduler
from bananas.worker_runtime.worker import Worker

__all__ = [
    "CronScheduler",
    "Executor",
    "LeaderElector",
    "Promoter",
    "RedisLeaderElector",
    "Registry",
    "Settings",
    "Worker",
    "WorkerMode",
    "build_worker",
    "fire_id",
    "load_registry",
    "serve",
]
