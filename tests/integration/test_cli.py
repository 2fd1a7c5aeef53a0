"""The ``bananas`` command as a user runs it: the real console script in a subprocess,
against a real Redis (and a real worker where jobs must run), checking what it prints
and the exit code a script would test."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
from pathlib import Path

import pytest

from bananas import Client, JobStatus
from tests.support.cli import (
    Cli,
    assert_one_line,
    bananas_command,
    cli,
    job_ids,
    qc,
    worker,
)
from tests.support.ports import free_port
from tests.support.processes import WorkerProcess
from tests.support.servers import RedisServer, available_binaries, blocked_clients
from tests.support.waiting import eventually

ESC = "\033["


def test_version_and_help_show_defaults(cli: Cli) -> None:
    version = cli.run("--version")
    assert version.returncode == 0 and "bananas-queue" in version.stdout
    shown = cli.ok("submit", "--help")
    assert "--priority {high,normal,low}" in shown and "(default: normal)" in shown
    assert "(default: default)" in shown  # --routing-key
    assert "@FILE" in shown and "--timeout" in shown and "--at TIME" in shown
    modes = cli.ok("worker", "--help")
    assert "thin: only run jobs" in modes and "scheduler-only:" in modes
    dlq = cli.ok("dlq", "--help")
    assert "list: skip this many (default: 0)" in dlq


def test_scheduler_refuses_worker_only_flags(cli: Cli) -> None:
    for flag in (["--concurrency", "4"], ["--routing-keys", "gpu"], ["--mode", "thin"]):
        done = cli.run("scheduler", *flag)
        assert done.returncode == 2, done
        assert f"unrecognized arguments: {flag[0]}" in done.stderr


def test_payload_inline_from_a_file_and_from_stdin(cli: Cli, qc: Client, tmp_path: Path) -> None:
    big = {"rows": list(range(40_000))}  # ~250 KiB: too long for a command line
    path = tmp_path / "payload.json"
    path.write_text(json.dumps(big))
    from_file = cli.ok("submit", "echo", "--payload", f"@{path}").strip()
    from_stdin = cli.ok("submit", "echo", "--payload", "-", stdin='{"via": "stdin"}').strip()
    inline = cli.ok("submit", "echo", "--payload", "[1, 2]").strip()
    assert qc.get_job(from_file).payload == big  # type: ignore[union-attr]
    assert qc.get_job(from_stdin).payload == {"via": "stdin"}  # type: ignore[union-attr]
    assert qc.get_job(inline).payload == [1, 2]  # type: ignore[union-attr]

    nan = cli.run("submit", "echo", "--payload", '{"x": NaN}')
    assert nan.returncode == 2
    assert_one_line(nan.stderr, "--payload", "NaN")
    missing = cli.run("submit", "echo", "--payload", f"@{tmp_path / 'nope.json'}")
    assert missing.returncode == 2
    assert_one_line(missing.stderr, "--payload", "nope.json")


def test_submit_timeout_at_and_bad_values(cli: Cli, qc: Client) -> None:
    job_id = cli.ok("submit", "echo", "--timeout", "90s", "--at", "2031-01-02T03:04:05+01:00")
    job = qc.get_job(job_id.strip())
    assert job is not None and job.timeout == 90 and job.status is JobStatus.SCHEDULED
    assert job.scheduled_for is not None and job.scheduled_for.isoformat().startswith(
        "2031-01-02T02:04:05"
    )
    for args, flag in (
        (["--timeout", "0"], "--timeout"),
        (["--at", "tomorrow"], "--at"),
        (["--delay", "10x"], "--delay"),
        (["--max-retries", "-1"], "--max-retries"),
        (["--delay", "1m", "--at", "2031-01-01T00:00:00Z"], "--at"),
    ):
        done = cli.run("submit", "echo", *args)
        assert done.returncode == 2, (args, done)
        assert flag in done.stderr and "Traceback" not in done.stderr


def test_submit_wait_result_and_job_views(cli: Cli, worker: WorkerProcess) -> None:
    done = cli.run("submit", "echo", "--payload", '{"n": 1}', "--wait", "20s")
    assert done.returncode == 0, done
    assert "status:   completed" in done.stdout and 'result:   {"n": 1}' in done.stdout
    assert ESC not in done.stdout  # not a terminal: no colour
    failed = cli.run("submit", "kaboom", "--payload", "7", "--max-retries", "0", "--wait", "20s")
    assert failed.returncode == 1, failed
    assert "status:   failed" in failed.stdout and "ValueError: kaboom 7" in failed.stdout

    as_json = cli.run("submit", "echo", "--payload", "3", "--wait", "20s", "--json")
    data = json.loads(as_json.stdout)
    assert data["status"] == "completed" and data["result"] == 3
    again = cli.run("result", data["job_id"])
    assert again.returncode == 0 and "status:   completed" in again.stdout

    job_id = cli.ok("submit", "kaboom", "--max-retries", "0", "--routing-key", "gpu").strip()
    waited = cli.run("result", job_id, "--wait", "20s")
    assert waited.returncode == 1 and "ValueError: kaboom None" in waited.stdout
    shown = cli.ok("job", job_id)
    assert "status:      failed" in shown and "routing key: gpu (normal priority)" in shown
    assert "attempts:    1 of 1" in shown and " UTC" in shown
    assert json.loads(cli.ok("job", job_id, "--json"))["status"] == "failed"
    assert cli.run("job", "no-such-job").returncode == 1


@pytest.mark.parametrize("command", ["result", "submit"])
def test_ctrl_c_during_a_wait_exits_130(
    cli: Cli, qc: Client, single_redis: RedisServer, command: str
) -> None:
    # No worker serves "nowhere": the wait can only end by the interrupt.
    before = blocked_clients(single_redis.url)
    if command == "result":
        job_id = qc.submit("echo", routing_key="nowhere")
        args = ["result", job_id, "--wait", "60s"]
    else:
        args = ["submit", "echo", "--routing-key", "nowhere", "--wait", "60s"]
    proc = cli.popen(*args)
    try:
        eventually(lambda: blocked_clients(single_redis.url) > before, 30, what="the wait to block")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err


def test_dlq_covers_every_routing_key(cli: Cli, qc: Client, worker: WorkerProcess) -> None:
    on_gpu = qc.submit("refuse", routing_key="gpu")
    on_default = qc.submit("kaboom", max_retries=0)
    for job_id in (on_gpu, on_default):
        qc.wait_for_result(job_id, timeout=20)
    listed = cli.ok("dlq", "list")
    header, *rows, footer = listed.splitlines()
    assert header.split()[:4] == ["ID", "ROUTING", "KEY", "NAME"]
    assert {r.split()[0] for r in rows} == {on_gpu, on_default}
    assert footer == "showing 1-2 of 2"
    # Columns line up: every row's name starts where the header's NAME does.
    assert {r.index("refuse" if r.startswith(on_gpu) else "kaboom") for r in rows} == {
        header.index("NAME")
    }
    page = cli.ok("dlq", "list", "--count", "1")
    assert page.splitlines()[-1] == "showing 1-1 of 2 (--offset 1 for more)"
    assert json.loads(cli.ok("dlq", "list", "--json"))["total"] == 2

    # requeue and delete find the job on whatever routing key holds it.
    requeued = cli.run("dlq", "requeue", on_gpu)
    assert requeued.returncode == 0 and "on gpu" in requeued.stdout, requeued
    qc.wait_for_result(on_gpu, timeout=20)
    eventually(lambda: qc.queue_stats("gpu").dead == 1, 20, what="dead-lettered again")
    assert cli.run("dlq", "delete", on_gpu).returncode == 0
    gone = cli.run("dlq", "delete", on_gpu)
    assert gone.returncode == 1 and "not in the dead-letter queue" in gone.stderr
    assert qc.queue_stats("gpu").dead == 0  # its failure result is kept until its TTL
    assert cli.run("dlq", "purge").returncode == 2
    assert "purged 1 job(s)" in cli.ok("dlq", "purge", "--yes")


def test_jobs_by_state_run_now_and_cancel(cli: Cli, qc: Client, worker: WorkerProcess) -> None:
    later = qc.submit("echo", "later", delay=3600, routing_key="gpu")
    to_cancel = qc.submit("echo", delay=3600)
    idle = qc.submit("echo", routing_key="nobody")
    scheduled = cli.ok("jobs", "--state", "scheduled")
    assert set(job_ids(scheduled)) == {later, to_cancel}
    assert scheduled.splitlines()[0].split()[-2:] == ["LAST", "ERROR"]
    assert "DUE" in scheduled.splitlines()[0]
    assert job_ids(cli.ok("jobs", "--state", "scheduled", "--routing-key", "gpu")) == [later]
    assert job_ids(cli.ok("jobs", "--state", "ready")) == [idle]
    assert json.loads(cli.ok("jobs", "--state", "dead", "--json")) == {"total": 0, "jobs": []}

    assert "queued to run now" in cli.ok("run-now", later)
    assert qc.wait_for_result(later, timeout=20).result == "later"
    assert cli.run("run-now", later).returncode == 1  # it is not scheduled any more

    assert cli.ok("cancel", to_cancel).strip() == f"cancelled {to_cancel}"
    again = cli.run("cancel", to_cancel)
    assert again.returncode == 1 and "is cancelled" in again.stderr
    assert cli.run("cancel", "no-such-job").returncode == 1


def test_schedules_errors_are_one_line_naming_the_flag(cli: Cli) -> None:
    removed = cli.run("schedules", "remove")
    assert removed.returncode == 2
    assert_one_line(removed.stderr, "schedules remove needs")
    missing = cli.run("schedules", "add", "--id", "x")
    assert missing.returncode == 2
    assert_one_line(missing.stderr, "--cron", "--job")
    bad_cron = cli.run("schedules", "add", "--id", "x", "--cron", "* * *", "--job", "echo")
    assert bad_cron.returncode == 2
    assert_one_line(bad_cron.stderr, "--cron:", "5 fields")
    bad_key = cli.run(
        "schedules",
        "add",
        "--id",
        "x",
        "--cron",
        "* * * * *",
        "--job",
        "echo",
        "--routing-key",
        "a b",
    )
    assert bad_key.returncode == 2
    assert_one_line(bad_key.stderr, "--routing-key:", "'a b'")
    bad_payload = cli.run(
        "schedules", "add", "--id", "x", "--cron", "* * * * *", "--job", "echo", "--payload", "{"
    )
    assert bad_payload.returncode == 2
    assert_one_line(bad_payload.stderr, "--payload")
    bad_zone = cli.run(
        "schedules",
        "add",
        "--id",
        "x",
        "--cron",
        "* * * * *",
        "--job",
        "echo",
        "--timezone",
        "Mars/Olympus",
    )
    assert bad_zone.returncode == 2
    assert_one_line(bad_zone.stderr, "--timezone:", "Mars/Olympus")

    cli.ok("schedules", "add", "--id", "nightly", "--cron", "0 3 * * *", "--job", "echo")
    listed = cli.ok("schedules")
    assert listed.splitlines()[0].split()[:2] == ["ID", "SOURCE"]
    assert listed.splitlines()[1].split()[:2] == ["nightly", "redis"]
    assert cli.ok("schedules", "remove", "nightly").strip() == "removed nightly"
    assert cli.run("schedules", "remove", "--id", "nightly").returncode == 1


def test_a_closed_pipe_is_not_a_traceback(cli: Cli, qc: Client) -> None:
    qc.submit("echo")
    proc = cli.popen("queues")
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before the command writes (like `| head`)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 141, err
    assert err == ""


def test_app_that_does_not_compile_exits_2(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "broken_app.py").write_text("def handler(:\n    pass\n")
    done = cli.run("worker", "--app", "broken_app", "--metrics-port", "0", PYTHONPATH=str(tmp_path))
    assert done.returncode == 2, done
    assert_one_line(done.stderr, "broken_app", "SyntaxError", "line 1")


def test_queues_forget_an_empty_routing_key(cli: Cli, qc: Client) -> None:
    job_id = qc.submit("echo", routing_key="gpu-typo")
    assert cli.run("queues", "--forget", "gpu-typo").returncode == 1  # it holds a job
    qc.cancel(job_id)
    assert cli.ok("queues", "--forget", "gpu-typo").strip() == "forgot gpu-typo"
    assert "gpu-typo" not in cli.ok("queues")
    assert [s["routing_key"] for s in json.loads(cli.ok("queues", "--json"))] == []


def test_unreachable_redis_exits_3(cli: Cli) -> None:
    done = cli.run("queues", "--redis-url", "redis://127.0.0.1:1")
    assert done.returncode == 3
    assert_one_line(done.stderr, "cannot reach Redis", "127.0.0.1:1")


def test_an_unreachable_cluster_is_exit_3_in_one_line(cli: Cli) -> None:
    done = cli.run("queues", "--redis-url", f"redis+cluster://127.0.0.1:{free_port()}")
    assert done.returncode == 3, done
    assert_one_line(done.stderr, "cannot reach Redis at redis+cluster://")


def test_refused_credentials_are_reported_as_such(cli: Cli) -> None:
    binaries = available_binaries()
    server = RedisServer(binaries.get("redis") or binaries["valkey"], password="s3cret").start()
    try:
        for url in (
            f"redis://:wrong@127.0.0.1:{server.port}",
            f"redis://127.0.0.1:{server.port}",
        ):
            done = cli.run("queues", "--redis-url", url)
            assert done.returncode == 3, done
            assert_one_line(done.stderr, "refused the credentials")
            assert "wrong" not in done.stderr  # the password stays masked
    finally:
        server.cleanup()


def test_status_is_coloured_on_a_terminal_only(cli: Cli, qc: Client) -> None:
    job_id = qc.submit("echo", delay=3600)
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            [bananas_command(), "job", job_id],
            stdout=follower,
            stderr=subprocess.DEVNULL,
            env=cli.environment(),
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(60) == 0
    finally:
        os.close(leader)
    on_tty = b"".join(chunks).decode()
    assert "\033[36mscheduled\033[0m" in on_tty
    piped = cli.ok("job", job_id)
    assert "status:      scheduled" in piped and ESC not in piped
    assert ESC not in cli.run("job", job_id, NO_COLOR="1").stdout
