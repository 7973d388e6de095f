"""Smoke test of benchmarks/gateway.py: its quick mode runs, every row delivers everything."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gateway.py"
ROWS = {
    "broadcast", "send-loop", "frame", "broadcaster", "socketio", "gateway", "gateway-asgi",
    "gateway-sse", "p2p-broadcast", "p2p-broadcaster", "p2p-socketio", "p2p-gateway",
    "p2p-gateway-sse",
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_quick_run_reports_every_row_complete(tmp_path: Path) -> None:
    output = tmp_path / "gateway.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    # Four clients, ten broadcast messages, two point-to-point messages per user.
    command = [sys.executable, str(SCRIPT), "--quick", "--clients", "4", "--messages", "10"]
    command += ["--per-user", "2", "--idle", "5", "--output", str(output)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(output.read_text())
    rows = {row["key"]: row for row in report["rows"]}
    assert set(rows) == ROWS
    for key, row in rows.items():
        assert row["complete"] is True, key
        (run,) = row["rounds"]  # --quick: one round
        for mode in ("saturated", "paced"):
            figures = run[mode]
            expected = figures["messages"] * (1 if key.startswith("p2p-") else 4)
            assert figures["expected"] == expected, (key, mode)
            assert figures["delivered"] == expected, (key, mode)
            assert figures["rate"] > 0
            assert figures["server_cpu_s"] > 0
        assert math.isfinite(row["p99 ms"])
        assert row["p99 ms"] >= row["p50 ms"] >= 0
        assert row["frame bytes"] > 90  # ~100-byte messages, plus each protocol's envelope
    assert rows["broadcast"]["x broadcast()"] == 1.0
    assert rows["p2p-broadcaster"]["x broadcaster"] == 1.0
    assert isinstance(rows["gateway"]["x socketio"], float)
    targets = {t["target"] for t in report["targets"]}
    assert "gateway paced p99 < 60 ms" in targets
    assert "complete" in done.stdout  # the table was printed
