"""Smoke test of benchmarks/bus_aws.py: its quick mode runs and spends what it should."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_quick_run_spends_one_put_events_per_ten_events(tmp_path: Path) -> None:
    output = tmp_path / "bus_aws.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, str(ROOT / "benchmarks" / "bus_aws.py"), "--quick"]
    done = subprocess.run(
        [*command, "--output", str(output)], env=env, capture_output=True, text=True, timeout=280
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = {row["scenario"]: row for row in json.loads(output.read_text())["rows"]}
    batched = rows["append batches of 100"]
    assert batched["requests"]["PutEvents"] == batched["events"] // 10
    assert batched["requests"]["PutItem"] == batched["events"]  # the dedupe record
    consumed = rows["receive(10) + ack"]
    assert consumed["requests"]["DeleteMessageBatch"] == consumed["events"] // 10
    assert consumed["requests"]["ReceiveMessage"] <= consumed["events"] // 5
    assert all(row["events_per_s"] > 0 for row in rows.values())
