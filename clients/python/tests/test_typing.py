"""The package is typed: `mypy --strict` accepts it and its tests."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO


def test_mypy_strict() -> None:
    pytest.importorskip("mypy")
    here = REPO / "clients/python"
    r = subprocess.run(
        [
            sys.executable, "-m", "mypy", "--strict",
            "--cache-dir", str(REPO / "target/interop/mypy-cache"),
            "src/authctl", "tests",
        ],
        cwd=here,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
