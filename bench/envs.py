"""Where each system runs: the project's venv, a peers' venv, or a Go binary.

The peers need two virtual environments because their redis-py pins
conflict: arq 0.28 requires ``redis<6`` while taskiq-redis 1.2 requires
``redis>=8``. Each venv is created under ``bench/`` (git-ignored) from a fully
pinned requirements file and reused while the file's hash, stored in the
venv, is unchanged. asynq is built from ``bench/asynq`` with ``go build``
into ``bench/.cache``; Go's own build cache makes rebuilding cheap. A group
that cannot be prepared makes its systems skip, with the reason printed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable

from bench.config import BENCH_DIR, CACHE_DIR, REPO_DIR

INSTALL_TIMEOUT_S = 900.0
BUILD_TIMEOUT_S = 600.0
STAMP = "bench-requirements.sha256"

PYTHON_ENVS: dict[str, tuple[str, str]] = {
    "peers": (".venv-peers", "requirements-peers.txt"),
    "arq": (".venv-peers-arq", "requirements-arq.txt"),
}
"""Environment name -> (venv directory, requirements file), both under bench/."""

ASYNQ_DIR = BENCH_DIR / "asynq"
ASYNQ_BINARY = CACHE_DIR / "asynq-bench"


@dataclasses.dataclass(frozen=True)
class Environment:
    """How to start an adapter of one group, or why it cannot run."""

    name: str
    command: tuple[str, ...] = ()
    """Prefix of the adapter command line: an interpreter plus ``-m
    bench.systems``, or the Go binary."""
    error: str | None = None

    def argv(self, system: str, role: str, spec: str) -> list[str]:
        """Return the full command line of one adapter role."""
        if self.name == "go":
            return [*self.command, role, spec]
        return [*self.command, system, role, spec]


def adapter_env() -> dict[str, str]:
    """Environment variables for adapters: the repo on the path, no stray venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    env["PYTHONPATH"] = str(REPO_DIR)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _python_env(name: str, say: Callable[[str], None]) -> Environment:
    venv_name, requirements_name = PYTHON_ENVS[name]
    venv = BENCH_DIR / venv_name
    requirements = BENCH_DIR / requirements_name
    python = venv / "bin" / "python"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = venv / STAMP
    if not (python.exists() and stamp.exists() and stamp.read_text().strip() == digest):
        say(f"environment {name}: installing {requirements_name} into bench/{venv_name}")
        try:
            subprocess.run(
                [sys.executable, "-m", "venv", "--clear", str(venv)],
                check=True,
                timeout=120,
                capture_output=True,
            )
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "-r", str(requirements)],
                check=True,
                timeout=INSTALL_TIMEOUT_S,
                capture_output=True,
            )
        except subprocess.CalledProcessError as exc:
            tail = (exc.stderr or b"").decode(errors="replace").strip().splitlines()[-3:]
            return Environment(name, error=f"pip failed: {' | '.join(tail)}")
        except subprocess.TimeoutExpired:
            return Environment(name, error=f"install took over {INSTALL_TIMEOUT_S:.0f} s")
        stamp.write_text(digest + "\n")
    else:
        say(f"environment {name}: bench/{venv_name} is up to date")
    return Environment(name, command=(str(python), "-m", "bench.systems"))


def _go_env(say: Callable[[str], None]) -> Environment:
    go = shutil.which("go")
    if go is None:
        return Environment("go", error="go is not on PATH")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    say("environment go: go build bench/asynq")
    try:
        subprocess.run(
            [go, "build", "-o", str(ASYNQ_BINARY), "."],
            cwd=ASYNQ_DIR,
            check=True,
            timeout=BUILD_TIMEOUT_S,
            capture_output=True,
        )
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or b"").decode(errors="replace").strip().splitlines()[-3:]
        return Environment("go", error=f"go build failed: {' | '.join(tail)}")
    except subprocess.TimeoutExpired:
        return Environment("go", error=f"go build took over {BUILD_TIMEOUT_S:.0f} s")
    return Environment("go", command=(str(ASYNQ_BINARY),))


def prepare(names: set[str], say: Callable[[str], None]) -> dict[str, Environment]:
    """Prepare the named environments; failures are returned, not raised."""
    envs: dict[str, Environment] = {}
    for name in sorted(names):
        if name == "project":
            envs[name] = Environment(name, command=(sys.executable, "-m", "bench.systems"))
        elif name == "go":
            envs[name] = _go_env(say)
        else:
            envs[name] = _python_env(name, say)
    return envs
