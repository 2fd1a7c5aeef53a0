"""Run the code blocks of the user docs against a real Redis and a real worker.

    redis-server --port 6390 --save '' --daemonize yes
    REDIS_URL=redis://127.0.0.1:6390 python docs/examples/run_snippets.py --flush

Every fenced block that an HTML comment marks on the line before it is checked:

- ``<!-- snippet: run -->``: a whole Python script (```python) or shell commands
  (```sh, run with ``bash -euo pipefail``), run as they are;
- ``<!-- snippet: fragment -->``: Python that assumes ``client = Client()``, which is
  put in front of it;
- ``<!-- snippet: quote file=tasks.py -->``: code quoted from an example file;
- ``<!-- snippet: skip (why) -->``: not run, for the reason given.

``file=NAME`` on any mark also checks that the block appears verbatim in
``docs/examples/NAME`` (the worker below runs the handlers quoted from ``tasks.py``).

A ```python block with no mark is an error, so nothing is left unchecked by accident.
Snippets run with ``docs/examples`` as the working directory (``import tasks`` works)
while ``bananas worker --app tasks`` serves the routing keys the guide uses, with its
metrics on port 8000. Shell snippets also get ``JOB_ID``: a job that has completed.
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


def start_worker(env: dict[str, str]) -> subprocess.Popen[str]:
    worker_env = {**env, "WORKER_ROUTING_KEYS": ROUTES, "METRICS_PORT": "8000"}
    worker_env.setdefault("LOG_LEVEL", "WARNING")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bananas.cli", "worker", "--app", "tasks"],
        cwd=HERE,
        env=worker_env,
        text=True,
    )
    from bananas import Client

    with Client(env["REDIS_URL"]) as client:
        deadline = time.monotonic() + 10
        while not client.workers():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the worker did not start")
            time.sleep(0.1)
    return proc


def completed_job(url: str) -> str:
    from bananas import Client

    with Client(url) as client:
        job_id = client.submit("process_data", {"rows": [1, 2, 3]})
        client.wait_for_result(job_id, timeout=10)
        return job_id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="markdown files (default: docs/*.md)")
    parser.add_argument("--flush", action="store_true", help="FLUSHDB first")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every output")
    args = parser.parse_args()
    url = os.environ.get("REDIS_URL")
    if not url:
        raise SystemExit("set REDIS_URL to a throwaway Redis server")
    files = [f.resolve() for f in args.files] or sorted(DOCS.glob("*.md"))
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if args.flush:
        import redis

        redis.Redis.from_url(url).flushdb()
    worker = start_worker(env)
    failures = 0
    try:
        env["JOB_ID"] = completed_job(url)
        for path in files:
            for s in snippets(path):
                where = f"{path.relative_to(DOCS.parent)}:{s.line}"
                if s.lang == "python" and not s.mode:
                    print(f"UNMARKED {where}")
                    failures += 1
                    continue
                if not s.mode or (s.mode == "skip" and not FILE.search(s.note)):
                    continue
                ok, output = run_one(s, env)
                print(f"{'ok  ' if ok else 'FAIL'} {where} [{s.lang} {s.mode}]")
                if output and (not ok or args.verbose):
                    print("     " + output.replace("\n", "\n     "))
                failures += not ok
    finally:
        worker.terminate()
        worker.wait(30)
    print(f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
