"""Run the code blocks of the user docs against a real Redis and a real worker.

    redis-server --port 6390 --save '' --daemonize yes
    REDIS_URL=redis://127.0.0.1:6390 python docs/examples/run_snippets.py --flush

Every fenced block that an HTML comment marks on the line before it is checked:

- ``<!-- snippet: run -->``: a whole Python script (```python) or shell commands
  (```sh, run with ``bash -euo pipefail``), run as they are;
- ``<!-- snippet: fragment -->``: Python that assumes ``client = Client()``, which is
  put in front of it;
- ``<!-- snippet: quote file=tasks.py -->``: code quoted from an example file;
- ``<!-- snippet: skip (why) -->``: not run, for the reason given;
- ``<!-- snippet: worker -->``: the shell command that starts the worker this file's
  snippets run against (the README's ``bananas worker --app app ...``), run as written
  in the background; files without one run against ``bananas worker --app tasks``.

``file=NAME`` on any mark also checks that the block appears verbatim in
``docs/examples/NAME`` (the worker below runs the handlers quoted from ``tasks.py``).

A ```python block with no mark is an error, so nothing is left unchecked by accident.
Snippets run with ``docs/examples`` as the working directory (``import tasks`` works)
while ``bananas worker --app tasks`` serves the routing keys the guide uses, with its
metrics on port 8000 (a file's own worker gets ``METRICS_PORT=0``). Shell snippets of
the guide also get ``JOB_ID``: a job that has completed. The default files are the
README and ``docs/*.md``.
``--flush`` empties the Redis database first: point it at a throwaway server.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent
ROUTES = "default,email,gpu,us-east-1,eu-west-1,high_memory,critical,batch"
PREAMBLE = "from bananas import Client\n\nclient = Client()\n"
MARK = re.compile(r"<!--\s*snippet:\s*(\w+)\s*(.*?)\s*-->")
FILE = re.compile(r"file=(\S+)")
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")


@dataclass
class Snippet:
    path: Path
    line: int
    lang: str
    mode: str
    note: str
    code: str


def snippets(path: Path) -> list[Snippet]:
    found: list[Snippet] = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening or not opening.group(2):
            i += 1
            continue
        indent, lang, start = len(opening.group(1)), opening.group(2), i
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][indent:])
            i += 1
        i += 1
        prev = next((ln for ln in reversed(lines[:start]) if ln.strip()), "")
        mark = MARK.search(prev)
        mode, note = (mark.group(1), mark.group(2)) if mark else ("", "")
        found.append(Snippet(path, start + 1, lang, mode, note, "\n".join(body) + "\n"))
    return found


def quoted(s: Snippet) -> tuple[bool, str]:
    """Whether a block marked ``file=NAME`` appears verbatim in that example file."""
    named = FILE.search(s.note)
    if not named:
        return True, ""
    source = (HERE / named.group(1)).read_text()
    ok = s.code.strip() in source
    return ok, "" if ok else f"not found verbatim in {named.group(1)}"


def run_one(s: Snippet, env: dict[str, str]) -> tuple[bool, str]:
    ok, why = quoted(s)
    if not ok or s.mode in ("quote", "skip"):
        return ok, why
    if s.lang == "python":
        code = (PREAMBLE + s.code) if s.mode == "fragment" else s.code
        cmd = [sys.executable, "-c", code]
    elif s.lang in ("sh", "bash", "console"):
        cmd = ["bash", "-euo", "pipefail", "-c", s.code]
    else:
        return False, f"cannot run a {s.lang} block"
    try:
        done = subprocess.run(
            cmd, cwd=HERE, env=env, capture_output=True, text=True, timeout=90, check=False
        )
    except subprocess.TimeoutExpired:
        return False, "timed out after 90 s"
    output = (done.stdout + done.stderr).strip()
    return done.returncode == 0, output


def start_worker(env: dict[str, str], own: Snippet | None = None) -> subprocess.Popen[str]:
    """The guide's worker (``--app tasks``), or the one a ``worker`` snippet starts."""
    from bananas import Client

    worker_env = {**env, "WORKER_ROUTING_KEYS": ROUTES, "METRICS_PORT": "8000"}
    worker_env.setdefault("LOG_LEVEL", "WARNING")
    with Client(env["REDIS_URL"]) as client:
        before = {w.id for w in client.workers()}
        if own is None:
            command = [sys.executable, "-m", "bananas.cli", "worker", "--app", "tasks"]
        else:
            worker_env = {**env, "METRICS_PORT": "0", "LOG_LEVEL": "WARNING"}
            command = ["bash", "-euo", "pipefail", "-c", "exec " + own.code.strip()]
        proc = subprocess.Popen(command, cwd=HERE, env=worker_env, text=True)
        deadline = time.monotonic() + 20
        while not {w.id for w in client.workers()} - before:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the worker did not start: {command}")
            time.sleep(0.1)
    return proc


def stop_worker(proc: subprocess.Popen[str] | None) -> None:
    if proc is not None:
        proc.terminate()
        proc.wait(30)


def completed_job(url: str) -> str:
    from bananas import Client

    with Client(url) as client:
        job_id = client.submit("process_data", {"rows": [1, 2, 3]})
        client.wait_for_result(job_id, timeout=10)
        return job_id


def check_file(path: Path, found: list[Snippet], env: dict[str, str], verbose: bool) -> int:
    """Run or check every marked snippet of one file; returns the number of failures."""
    failures = 0
    for s in found:
        where = f"{path.relative_to(DOCS.parent)}:{s.line}"
        if s.lang == "python" and not s.mode:
            print(f"UNMARKED {where}")
            failures += 1
            continue
        if not s.mode or s.mode == "worker" or (s.mode == "skip" and not FILE.search(s.note)):
            continue
        ok, output = run_one(s, env)
        print(f"{'ok  ' if ok else 'FAIL'} {where} [{s.lang} {s.mode}]")
        if output and (not ok or verbose):
            print("     " + output.replace("\n", "\n     "))
        failures += not ok
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "files", nargs="*", type=Path, help="markdown files (default: README.md, docs/*.md)"
    )
    parser.add_argument("--flush", action="store_true", help="FLUSHDB first")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every output")
    args = parser.parse_args()
    url = os.environ.get("REDIS_URL")
    if not url:
        raise SystemExit("set REDIS_URL to a throwaway Redis server")
    default = [DOCS.parent / "README.md", *sorted(DOCS.glob("*.md"))]
    files = [f.resolve() for f in args.files] or default
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if args.flush:
        import redis

        redis.Redis.from_url(url).flushdb()
    failures = 0
    worker: subprocess.Popen[str] | None = None
    serving: str | None = None
    try:
        for path in files:
            found = snippets(path)
            own = next((s for s in found if s.mode == "worker"), None)
            wanted = own.code if own else "tasks"
            if wanted != serving:
                stop_worker(worker)
                worker, serving = start_worker(env, own), wanted
                if own is None and "JOB_ID" not in env:
                    env["JOB_ID"] = completed_job(url)
            failures += check_file(path, found, env, args.verbose)
    finally:
        stop_worker(worker)
    print(f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
