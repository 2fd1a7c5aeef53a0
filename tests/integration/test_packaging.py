"""The distribution: ``python -m build`` makes a wheel and an sdist that ``twine check`` passes.

The distribution is ``bananas-queue`` (``bananas`` on PyPI is an unrelated project); the
import name stays ``bananas``. The build runs without isolation (the dev extra carries
setuptools >= 77), so the test needs no network.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
def test_build_makes_a_wheel_and_sdist_that_twine_accepts(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=280,
    )
    output = built.stdout + built.stderr
    assert built.returncode == 0, output[-3000:]
    # The license metadata is in the PEP 639 form: no setuptools deprecation warnings.
    assert "deprecated" not in output.lower(), output[-3000:]
    wheels = list(tmp_path.glob("bananas_queue-*.whl"))
    sdists = list(tmp_path.glob("bananas_queue-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in tmp_path.iterdir())

    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, wheels + sdists)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    with zipfile.ZipFile(wheels[0]) as wheel:
        names = wheel.namelist()
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = wheel.read(info).decode()
        entry_points = wheel.read(info.replace("METADATA", "entry_points.txt")).decode()
    assert "Name: bananas-queue" in metadata
    assert "License-Expression: MIT" in metadata
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "bananas/py.typed" in names
    assert "bananas/scripts/fetch.lua" in names
    assert "bananas = bananas.cli:main" in entry_points
