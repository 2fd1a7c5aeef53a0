"""``bananas worker`` as its operator sees it: what it says at start-up, what it refuses,
what it logs about jobs, and what a failed job keeps (its traceback)."""

from __future__ import annotations

from pathlib import Path

from bananas import Client, Schedule
from tests.support.cli import Cli, assert_one_line, cli, qc
from tests.support.processes import WorkerProcess
from tests.support.servers import RedisServer, available_binaries
from tests.support.waiting import eventually


def test_a_worker_with_nothing_runnable_refuses_to_start(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "empty_app.py").write_text(
        "from bananas.worker_runtime import Registry\nregistry = Registry()\n"
    )
    empty = cli.run("worker", "--app", "empty_app", "--metrics-port", "0", PYTHONPATH=str(tmp_path))
    assert empty.returncode == 2, empty
    assert_one_line(empty.stderr, "empty_app registers no handlers")
    missing = cli.run(
        "worker",
        "--app",
        "tests.apps.cli_handlers",
        "--job-types",
        "echo,transcode",
        "--metrics-port",
        "0",
    )
    assert missing.returncode == 2, missing
    assert_one_line(missing.stderr, "WORKER_JOB_TYPES names transcode", "it has: echo")


def test_start_up_line_tracebacks_and_per_job_lines(
    single_redis: RedisServer, prefix: str, cli: Cli, qc: Client
) -> None:
    worker = WorkerProcess(
        single_redis.url,
        prefix,
        app="tests.apps.cli_handlers",
        env={"WORKER_ROUTING_KEYS": "default,gpu", "LOG_JOBS": "true"},
    ).start()
    try:
        assert (
            "serving 6 handler(s) [echo, flaky, kaboom, nap, refuse, slow] on routing keys "
            "[default, gpu]; schedules in code: [nightly-echo (0 3 * * * Europe/London)]"
        ) in worker.log()
        ok = qc.submit("echo", {"n": 1})
        assert qc.wait_for_result(ok, timeout=20).is_success()
        bad = qc.submit("kaboom", "x", max_retries=0, routing_key="gpu")
        failed = qc.wait_for_result(bad, timeout=20)
        assert failed.error == "ValueError: kaboom 'x'"
        assert failed.traceback.startswith("Traceback (most recent call last):")
        assert "in _explode" in failed.traceback and "executor.py" not in failed.traceback

        shown = cli.ok("job", bad)
        assert "error:       ValueError: kaboom 'x'" in shown
        assert 'raise ValueError(f"kaboom {payload!r}")' in shown

        log = eventually(lambda: "dead-lettered" in worker.log() and worker.log(), 10)
        assert f"WARNING bananas.worker_runtime.acker: job {bad} (kaboom) dead-lettered" in log
        assert "in _explode" in log  # the final failure's traceback, at WARNING
        assert f"job {ok} (echo) started on default, attempt 1 of 4" in log
        assert f"job {ok} (echo) completed in " in log
        assert f"job {bad} (kaboom) failed attempt 1 of 1 after " in log
    finally:
        worker.cleanup()


def test_per_handler_defaults_apply_when_the_job_has_none(
    single_redis: RedisServer, prefix: str, qc: Client, cli: Cli
) -> None:
    worker = WorkerProcess(
        single_redis.url, prefix, app="tests.apps.cli_handlers", env={"RETRY_BACKOFF_MAX": "0.1"}
    ).start()
    try:
        flaky = qc.submit("flaky")  # the client's default budget is 3; the handler's is 1
        assert qc.wait_for_result(flaky, timeout=30).error == "RuntimeError: still flaky"
        dead = qc.get_job(flaky)
        assert dead is not None and dead.attempts == 2  # dead-lettered after 1 retry
        assert dead.error == "RuntimeError: still flaky"
        assert dead.earlier_errors == ["RuntimeError: still flaky"]  # attempt 1's, kept
        assert "raise RuntimeError" in dead.traceback
        shown = cli.ok("job", flaky)
        assert "attempt 1:   RuntimeError: still flaky" in shown, shown
        own = qc.submit("flaky", max_retries=0)  # the job's own budget wins
        qc.wait_for_result(own, timeout=30)
        assert {d.job_id: d.attempts for d in qc.dead_letters()}[own] == 1
        slow = qc.submit("slow")
        assert qc.wait_for_result(slow, timeout=30).error.startswith("timed out after 0.3s")
    finally:
        worker.cleanup()


def test_a_redis_outage_is_logged_once_and_its_end_too(prefix: str) -> None:
    binaries = available_binaries()
    server = RedisServer(binaries.get("redis") or binaries["valkey"]).start()
    worker = WorkerProcess(server.url, prefix, app="tests.apps.cli_handlers").start()
    try:
        server.stop()
        eventually(lambda: "failed, retrying with backoff" in worker.log(), 20)
        server.start()  # the same port
        eventually(lambda: "Redis is reachable again after" in worker.log(), 30)
        eventually(lambda: worker.ready(), 30)
        log = worker.log()
        assert log.count("failed, retrying with backoff") == 1, log
        assert log.count("Redis is reachable again after") == 1, log
        assert log.count("WARNING") <= 1, log  # at most the 10 s reminder
    finally:
        worker.cleanup()
        server.cleanup()


def test_workers_lists_schedulers_the_cron_leader_and_running_jobs(
    single_redis: RedisServer, prefix: str, cli: Cli, qc: Client
) -> None:
    worker = WorkerProcess(single_redis.url, prefix, app="tests.apps.cli_handlers").start()
    scheduler = WorkerProcess(
        single_redis.url, prefix, app="tests.apps.cli_handlers", command="scheduler"
    ).start()
    try:
        napping = qc.submit("nap", {"seconds": 30})
        qc.register_schedule(Schedule(id="from-redis", cron="*/5 * * * *", job="echo"))

        def listed() -> list[list[str]] | None:
            lines = cli.ok("workers").splitlines()
            rows = [ln.split() for ln in lines[1:-1]]
            modes = sorted(r[1] for r in rows)
            running = any(r[-1] == napping for r in rows)
            leaders = sum(1 for r in rows if "yes" in r)
            ok = modes == ["default", "scheduler-only"] and running and leaders == 1
            return rows if ok else None

        rows = eventually(listed, 30, what="both processes, one leader, the running nap")
        by_mode = {r[1]: r for r in rows}
        assert by_mode["scheduler-only"][2:5] == ["(all)", "-", "-"]
        assert cli.ok("workers").splitlines()[-1].startswith("cron leader: ")

        def schedules() -> dict[str, str] | None:
            found = {ln.split()[0]: ln.split()[1] for ln in cli.ok("schedules").splitlines()[1:]}
            return found if "nightly-echo" in found else None

        sources = eventually(schedules, 30, what="the leader to publish its code schedules")
        assert sources == {"from-redis": "redis", "nightly-echo": "code"}
    finally:
        worker.cleanup()
        scheduler.cleanup()
