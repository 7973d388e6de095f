"""Smoke test of benchmarks/bff.py: a short run prints both rows and their ratio per case."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_short_run_reports_both_rows_and_the_ratio() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, "bff.py", "--requests", "20", "--rounds", "2", "--concurrency", "4"]
    done = subprocess.run(
        command, cwd=ROOT / "benchmarks", env=env, capture_output=True, text=True, timeout=110
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads((ROOT / "benchmarks" / "results" / "bff.json").read_text())
    rows = {(row["case"], row["row"]) for row in report["rows"]}
    for case in ("fast+slow+failing", "3 fast (weakest)"):
        for row in ("httpx+anyio by hand", "eventpatterns.bff", "ratio (ours / hand)"):
            assert (case, row) in rows
    assert all(row["views_s"] > 0 for row in report["rows"])
