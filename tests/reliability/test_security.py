"""Security: JSON only (nothing is unpickled or evaluated), Redis AUTH, ACL users with
the least rights each role needs, TLS with a CA file, and secrets kept out of logs,
metrics and error messages. Real worker processes against real redis-servers."""

from __future__ import annotations

import ast
import os
import pickle
import re
import subprocess
import sys
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from bananas import AsyncClient, Client, JobSpec, JobStatus, Priority, Schedule
from bananas.errors import (
    BananasAuthenticationError,
    BananasConnectionError,
    BananasError,
    ConfigError,
    InvalidJobError,
)
from bananas.keys import KeySpace
from bananas.transport import run_sync
from bananas.worker_runtime import CronScheduler
from bananas.worker_runtime.leader import RedisLeaderElector
from tests.chaos import APP
from tests.reliability.conftest import AclUsers, Certificates, TLSRedisServer
from tests.support.clock import FakeClock
from tests.support.ports import free_port
from tests.support.processes import ROOT, WorkerProcess, http_get
from tests.support.servers import RedisServer
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(90)

PACKAGE = ROOT / "bananas"
Spawn = Callable[..., WorkerProcess]


@pytest.fixture
def spawn(prefix: str) -> Iterator[Spawn]:
    """Start worker processes of the chaos handler app against any URL; reaped at the end."""
    procs: list[WorkerProcess] = []

    def start(
        url: str, wait_ready: bool = True, command: str = "worker", **env: str
    ) -> WorkerProcess:
        proc = WorkerProcess(url, prefix, env=env, app=APP, command=command)
        procs.append(proc)
        return proc.start(wait_ready)

    yield start
    for proc in procs:
        proc.cleanup()


# -- JSON only -----------------------------------------------------------------------------

#: Modules whose only purpose is to turn bytes back into live objects.
UNSAFE_MODULES = {"pickle", "_pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle",
                  "jsonpickle", "copyreg"}  # fmt: skip
UNSAFE_BUILTINS = {"eval", "exec", "compile", "__import__", "breakpoint"}
#: Where a module is imported by name, and why that name is not data: the handler module
#: comes from BANANAS_APP / --app, set by whoever deploys the worker.
IMPORT_BY_NAME = {"bananas/worker_runtime/runner.py"}


def _python_findings() -> tuple[list[str], set[str]]:
    findings, importers = [], set()
    for path in sorted(PACKAGE.rglob("*.py")):
        where = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text(), where)):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                names.append(getattr(node, "module", None) or "")
                if any(n.split(".")[0] in UNSAFE_MODULES for n in names):
                    findings.append(f"{where}:{node.lineno} imports {names}")
            elif isinstance(node, ast.Call):
                fn = node.func
                if isinstance(fn, ast.Name) and fn.id in UNSAFE_BUILTINS:
                    findings.append(f"{where}:{node.lineno} calls {fn.id}()")
                elif isinstance(fn, ast.Attribute):
                    owner = ast.unparse(fn.value)
                    if owner == "yaml" and fn.attr not in ("safe_load", "safe_dump"):
                        findings.append(f"{where}:{node.lineno} calls yaml.{fn.attr}()")
                    if fn.attr == "import_module":
                        importers.add(where)
    return findings, importers


def test_the_package_never_unpickles_or_evaluates() -> None:
    findings, importers = _python_findings()
    assert findings == []
    assert importers == IMPORT_BY_NAME
    for script in sorted((PACKAGE / "scripts").glob("*.lua")):
        lua = script.read_text()
        assert not re.search(r"\b(loadstring|load|dofile|require|cmsgpack)\b\s*\(", lua), script
        assert set(re.findall(r"cjson\.(\w+)", lua)) <= {"decode", "encode", "null"}, script


class _Boom:
    """Unpickling this creates a folder: the proof that something unpickled it."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (self.marker,)


def test_a_pickle_in_a_payload_stays_an_inert_string(
    spawn: Spawn, single_redis: RedisServer, prefix: str, tmp_path: Path
) -> None:
    marker = str(tmp_path / "unpickled")
    blob = pickle.dumps(_Boom(marker))
    spawn(single_redis.url)
    with Client(single_redis.url, prefix=prefix) as client:
        with pytest.raises(InvalidJobError, match="not JSON-serialisable"):
            client.submit("echo", blob)  # bytes are not JSON: refused, nothing stored
        text = blob.decode("latin-1")
        result = client.submit_and_wait("echo", {"blob": text, "list": [text]}, timeout=10)
        assert result.result == {"type": "dict", "payload": {"blob": text, "list": [text]}}
        # A pickle written straight into Redis, as a job record and as a stored result.
        route = KeySpace(prefix).route("default")
        with redis.Redis(port=single_redis.port) as raw:
            raw.hset(route.jobs, "pickled", blob)
            raw.rpush(route.queues[1], "pickled")
            raw.rpush(route.wake, 1)  # as enqueue.lua does (else: the 30 s safety sweep)
            raw.hset(route.result("forged"), "result", blob)
        eventually(lambda: client.queue_stats().dead == 1, what="the record dead-lettered")
        [dead] = client.dead_letters()
        assert dead.job_id == "pickled" and dead.error.startswith("unreadable job record")
        with pytest.raises(ValueError):
            client.get_result("forged", routing_key="default")
    assert not os.path.exists(marker), "something unpickled a payload"


# -- AUTH, ACL users -----------------------------------------------------------------------


@pytest.fixture
def password_redis(single_redis: RedisServer) -> Iterator[RedisServer]:
    server = RedisServer(single_redis.binary, password=f"pw-{uuid.uuid4().hex}").start()
    yield server
    server.cleanup()


def test_password_auth(spawn: Spawn, password_redis: RedisServer, prefix: str) -> None:
    url = password_redis.url
    spawn(url)
    with Client(url, prefix=prefix) as client:
        assert client.submit_and_wait("echo", 1, timeout=10).is_success()
    wrong = url.replace(f":{password_redis.password}@", ":not-the-password@")
    with (
        Client(wrong, prefix=prefix) as client,
        pytest.raises(BananasAuthenticationError) as err,  # a BananasConnectionError
    ):
        client.submit("echo", 1)
    assert "***" in str(err.value) and "not-the-password" not in str(err.value)
    assert isinstance(err.value, BananasConnectionError)
    anonymous = url.replace(f":{password_redis.password}@", "")
    with (
        Client(anonymous, prefix=prefix) as client,
        pytest.raises(BananasAuthenticationError, match="refused the credentials"),
    ):
        client.submit("echo", 1)
    refused = spawn(wrong, wait_ready=False)
    assert refused.process is not None and refused.process.wait(20) == 3, refused.log()
    assert "Redis at redis://:***@" in refused.log()
    assert "refused the credentials" in refused.log()


def _acl_denials(server: RedisServer, prefix: str) -> list[dict[str, object]]:
    """ACL LOG entries of this test's users. redis-py's CLIENT SETINFO at connect is left
    out: refused on Redis 7.2+ (harmlessly, redis-py ignores the error), unknown on 7.0."""
    with server.client() as admin:
        entries = admin.execute_command("ACL", "LOG")
    found = []
    for entry in entries:
        row = dict(zip(entry[::2], entry[1::2], strict=True)) if isinstance(entry, list) else entry
        if prefix in str(row.get("username")) and not str(row.get("object")).startswith("client"):
            found.append(row)
    return found


def _flow_control(client: Client, worker_url: str, prefix: str) -> None:
    """Flow control under the client and worker users: a group under a concurrency limit
    (one of its jobs delayed), a unique submit, an explicit id, a job-name limit, pause and
    resume, and progress pushed to a watcher."""
    client.set_limit("tenant:*", concurrency=1)
    grouped = client.submit_many([JobSpec("echo", {"n": i}, group="tenant:1") for i in range(3)])
    grouped.append(client.submit("echo", group="tenant:1", delay=0.3))  # promoted into its group
    unique = client.submit("echo", {"u": 1}, unique_for=30)
    assert client.submit("echo", {"u": 1}, unique_for=30) == unique
    named = client.submit("echo", job_id=f"acl-{prefix}")
    for job_id in [*grouped, unique, named]:
        assert client.wait_for_result(job_id, timeout=10).is_success()
    client.set_limit("name:echo", concurrency=5, routing_key="parked")  # and the name flag
    client.set_limit("name:echo", routing_key="parked")
    assert client.pause("parked") and client.paused() == {"parked": list(Priority)}
    assert client.resume("parked") == []
    watched = client.submit("echo", routing_key="watched")  # no worker serves it
    with Client(worker_url, prefix=prefix) as w:
        [leased] = w.run(w.broker.fetch("watched", 1, 30_000))
        events = client.watch(watched, timeout=10)
        assert next(events).status is JobStatus.PROCESSING
        assert w.run(w.broker.set_progress("watched", watched, leased.attempt, 50, None))
        assert next(events).progress == 50
        events.close()
        assert w.run(w.broker.release("watched", [(watched, leased.attempt, Priority.NORMAL)]))


def test_every_role_runs_under_its_least_privilege_acl_user(
    spawn: Spawn, acl_redis: RedisServer, acl_users: AclUsers
) -> None:
    prefix = acl_users.prefix
    with Client(acl_users.operator, prefix=prefix) as operator:
        operator.register_schedule(Schedule(id="nightly", cron="0 3 * * *", job="echo"))
    # The scheduler process leads, promotes and reaps every route (it lists them).
    scheduler = spawn(acl_users.worker, command="scheduler", SCHEDULER_INTERVAL="0.2s")
    common = {"ENABLE_SCHEDULER": "false", "LEASE_DURATION": "1s", "RETRY_BACKOFF_MAX": "0.1s"}
    worker = spawn(acl_users.worker, **common)
    with Client(acl_users.client, prefix=prefix) as client:
        assert client.ping()
        assert client.submit_and_wait("echo", {"n": 1}, timeout=10).is_success()
        ids = client.submit_many([JobSpec("echo", {"n": i}) for i in range(20)])
        delayed = client.submit("echo", {"late": True}, delay=0.3)
        flaky = client.submit("oom", max_retries=1)
        for job_id in [*ids, delayed]:
            assert client.wait_for_result(job_id, timeout=10).is_success()
        assert client.wait_for_result(flaky, timeout=10).error.startswith("MemoryError")
        assert client.cancel(client.submit("echo", delay=60)), "cancel a delayed job"
        assert client.cancel(client.submit("echo", routing_key="parked")), "and a queued one"
        _flow_control(client, acl_users.worker, prefix)
        job = client.get_job(ids[0])
        assert job is not None and job.status is JobStatus.COMPLETED
        assert client.queue_stats().dead == 1

        def status(job_id: str) -> JobStatus | None:
            found = client.get_job(job_id)
            return found.status if found else None

        # A job whose worker dies is reaped by the scheduler; one that outlasts the drain
        # of a SIGTERMed worker is handed straight back.
        held = client.submit("nap", {"seconds": 60})
        eventually(lambda: status(held) is JobStatus.PROCESSING, what="nap started")
        worker.kill()
        eventually(lambda: status(held) is JobStatus.PENDING, 10, what="lease reaped")
        drained = spawn(acl_users.worker, SHUTDOWN_TIMEOUT="0.2s", **common)
        eventually(lambda: status(held) is JobStatus.PROCESSING, what="nap re-started")
        assert drained.stop() == 0
        assert status(held) is JobStatus.PENDING, "released at SIGTERM"
    _, metrics = http_get(scheduler.port, "/metrics")
    assert "bananas_scheduler_leader 1.0" in metrics, "the leader lock works"
    with acl_redis.client() as admin:
        admin.script_flush()  # as after a restart: the scripts are sent again with EVAL
    with Client(acl_users.operator, prefix=prefix) as operator:
        assert operator.queue_stats().dead == 1
        assert operator.get_result(ids[0], routing_key="default") is not None
        job = operator.get_job(held, routing_key="default")
        # Two deliveries: the reaped one counts, the one handed back at SIGTERM does not.
        assert job is not None and job.status is JobStatus.PENDING and job.attempts == 1
        eventually(lambda: operator.schedule_status("nightly"), what="the cron status")
        assert operator.unregister_schedule("nightly")
    assert scheduler.stop() == 0
    for proc in (scheduler, worker, drained):
        assert "NOPERM" not in proc.log() and "permissions" not in proc.log(), proc.log()
    assert _acl_denials(acl_redis, prefix) == [], "a role needed a command it was not given"


async def test_cron_fires_under_the_worker_acl_user(
    acl_redis: RedisServer, acl_users: AclUsers
) -> None:
    prefix, clock = acl_users.prefix, FakeClock()
    schedule = Schedule(id="every", cron="* * * * *", job="echo", concurrency_policy="Replace")
    with Client(acl_users.operator, prefix=prefix) as operator:
        operator.register_schedule(schedule)
    async with AsyncClient(acl_users.worker, prefix=prefix, clock=clock) as client:
        cron = CronScheduler(client, RedisLeaderElector(client, "acl", "me", 5), clock=clock)
        await cron.step()  # leads; first sight of the schedule
        for _ in range(2):  # fire, then replace the fire that is still queued
            clock.advance(60)
            await cron.step()
        await cron.elector.release()
        state = await client.schedule_status("every")
    assert cron.is_leader and state is not None and state.run_count == 2
    with Client(acl_users.client, prefix=prefix) as client:
        assert client.queue_stats().queued == 1, "the first fire was replaced"
    assert _acl_denials(acl_redis, prefix) == []


def test_acl_users_cannot_step_outside_their_role(
    acl_redis: RedisServer, acl_users: AclUsers
) -> None:
    prefix = acl_users.prefix
    other = KeySpace("someone-else").route("default")
    outside = [
        ("FLUSHALL",),
        ("KEYS", "*"),
        ("CONFIG", "GET", "requirepass"),
        ("SCRIPT", "FLUSH"),
        ("ACL", "LIST"),
        ("GET", f"{prefix}x:key"),
        ("LLEN", other.queues[1]),
        ("SUBSCRIBE", f"{prefix}:events"),
    ]
    for url in (acl_users.worker, acl_users.client, acl_users.operator):
        with redis.Redis.from_url(url, decode_responses=True) as r:
            for command in outside:
                with pytest.raises(redis.exceptions.NoPermissionError):
                    r.execute_command(*command)
    with Client(acl_users.client, prefix=prefix) as client:
        client.submit("echo", 1)
        with pytest.raises(BananasError, match=r"(?i)permission|can't"):
            run_sync(client.redis, client.broker.fetch("default", 1, 1000), "client")
    with Client(acl_users.operator, prefix=prefix) as operator:
        with pytest.raises(BananasError, match=r"(?i)permission|can't"):
            operator.submit("echo", 1)
        with pytest.raises(BananasError, match=r"(?i)permission|can't"):
            run_sync(operator.redis, operator.broker.fetch("default", 1, 1000), "operator")
        assert operator.queue_stats().queued == 1, "the operator still reads the queues"


# -- TLS -----------------------------------------------------------------------------------


def test_tls_with_a_ca_file(
    spawn: Spawn, tls_redis: TLSRedisServer, certificates: Certificates, prefix: str
) -> None:
    url = tls_redis.url
    assert url.startswith("rediss://")
    worker = spawn(url, REDIS_CA_FILE=certificates.ca)
    with Client(url, prefix=prefix, ssl_ca_certs=certificates.ca) as client:
        assert client.submit_and_wait("echo", {"over": "tls"}, timeout=10).is_success()
    with Client(f"{url}?ssl_ca_certs={certificates.ca}", prefix=prefix) as client:
        assert client.submit_and_wait("echo", {"ca": "in the url"}, timeout=10).is_success()
    assert worker.stop() == 0


def test_tls_refuses_an_untrusted_server_and_plain_text(
    spawn: Spawn, tls_redis: TLSRedisServer, certificates: Certificates, prefix: str
) -> None:
    url = tls_redis.url
    untrusted = Client(url, prefix=prefix, ssl_ca_certs=certificates.other_ca)
    with untrusted, pytest.raises(BananasConnectionError, match="certificate verify failed"):
        untrusted.ping()
    plain = Client(url.replace("rediss://", "redis://"), prefix=prefix)
    with plain, pytest.raises(BananasConnectionError):
        plain.ping()
    refused = spawn(url, wait_ready=False, REDIS_CA_FILE=certificates.other_ca)
    assert refused.process is not None and refused.process.wait(20) == 3, refused.log()
    assert "certificate verify failed" in refused.log()
    assert tls_redis.password is not None and tls_redis.password not in refused.log()


def test_mutual_tls_with_a_client_certificate(
    spawn: Spawn, mtls_redis: TLSRedisServer, certificates: Certificates, prefix: str
) -> None:
    c = certificates
    url = f"{mtls_redis.url}?ssl_certfile={c.client_cert}&ssl_keyfile={c.client_key}"
    worker = spawn(url, REDIS_CA_FILE=c.ca)
    with Client(url, prefix=prefix, ssl_ca_certs=c.ca) as client:
        assert client.submit_and_wait("echo", {"over": "mtls"}, timeout=10).is_success()
    anonymous = Client(mtls_redis.url, prefix=prefix, ssl_ca_certs=c.ca)
    with anonymous, pytest.raises(BananasConnectionError):
        anonymous.ping()
    assert worker.stop() == 0


# -- secrets -------------------------------------------------------------------------------


def _exception_text(exc: BaseException) -> str:
    return repr(exc) + "".join(traceback.format_exception(exc))


def test_secrets_stay_out_of_logs_metrics_and_errors(
    spawn: Spawn, single_redis: RedisServer, prefix: str
) -> None:
    secret = f"S3cret-{uuid.uuid4().hex}"
    server = RedisServer(single_redis.binary, password=secret).start()
    seen: list[str] = []
    try:
        url = server.url
        text_worker = spawn(url, LOG_LEVEL="DEBUG")
        json_worker = spawn(url, LOG_LEVEL="DEBUG", LOG_FORMAT="json", command="scheduler")
        with Client(url, prefix=prefix) as client:
            assert client.submit_and_wait("echo", 1, timeout=10).is_success()
            client.submit("oom", max_retries=0)
            seen += [http_get(p.port, "/metrics")[1] for p in (text_worker, json_worker)]
            server.stop()  # Redis goes away under the running processes
            with pytest.raises(BananasConnectionError) as err:
                client.submit("echo", 1)
            seen.append(_exception_text(err.value))
            for proc in (text_worker, json_worker):
                eventually(lambda p=proc: http_get(p.port, "/readyz")[0] == 503, what="unready")
            server.start()
            for proc in (text_worker, json_worker):
                eventually(lambda p=proc: http_get(p.port, "/readyz")[0] == 200, what="ready")
        wrong = spawn(url.replace(secret, f"{secret}-wrong"), wait_ready=False)
        dead_port = f"redis://:{secret}@127.0.0.1:{free_port()}"
        unreachable = spawn(dead_port, wait_ready=False)
        for proc in (wrong, unreachable):
            assert proc.process is not None and proc.process.wait(30) == 3
        for bad in (
            dead_port,
            f"redis://:{secret}@127.0.0.1:notaport",
            f"redis+cluster://:{secret}@host:1,host:nope",
            f"redis+sentinel://:{secret}@127.0.0.1:{free_port()}",
            f"http://:{secret}@127.0.0.1:6379",
            f"redis://user:{secret}@127.0.0.1:{free_port()}/0",
        ):
            try:
                with Client(bad, prefix=prefix) as client:
                    client.ping()
            except (BananasError, ConfigError, ValueError) as exc:
                seen.append(_exception_text(exc))
            else:
                pytest.fail(f"{bad} worked")
        cli = subprocess.run(
            [sys.executable, "-m", "bananas.cli", "queues", "--redis-url", dead_port],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=30,
        )
        assert cli.returncode == 3
        seen += [cli.stdout, cli.stderr]
        for proc in (text_worker, json_worker):
            assert proc.stop() == 0
        logs = [
            Path(p.log_path).read_text() for p in (text_worker, json_worker, wrong, unreachable)
        ]
        assert "Redis call failed" in logs[0] and '"level":"ERROR"' in logs[1]
        assert "***" in logs[2] and "***" in logs[3]
        seen += logs
    finally:
        server.cleanup()
    leaks = [text for text in seen if secret in text]
    assert leaks == [], "the password leaked"
