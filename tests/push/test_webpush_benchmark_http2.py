"""Smoke test of ``benchmarks/push.py --http2``: HTTP/2 rows run and every message decrypts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "push.py"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_http2_rows_are_verified_and_compared_to_http1(tmp_path: Path) -> None:
    output = tmp_path / "push.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, str(SCRIPT), "--quick", "--http2", "--subscriptions", "120"]
    command += ["--peer-subscriptions", "30", "--output", str(output)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(output.read_text())
    rows = {row["key"]: row for row in report["rows"]}
    assert rows["eventpatterns-h2"]["verified"] == rows["eventpatterns-h2"]["notifications"] == 120
    assert rows["eventpatterns-h2-64"]["verified"] == 30
    assert all(row["complete"] for row in rows.values())
    assert rows["eventpatterns-h2"]["mints"] == 1
    assert report["costs"]["eventpatterns-h2 x eventpatterns"] > 0
    assert report["config"]["http2"] == "True"
    assert "same hypercorn server" in done.stdout
