"""Smoke test of benchmarks/push.py: its quick mode runs and every notification decrypts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "push.py"
ROWS = {
    "pywebpush", "pywebpush-session", "pywebpush-threads", "pywebpush-async",
    "eventpatterns", "eventpatterns-serial", "eventpatterns-16", "eventpatterns-64",
    "eventpatterns-httpx-64", "eventpatterns-client-16",
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_quick_run_reports_every_row_verified(tmp_path: Path) -> None:
    output = tmp_path / "push.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, str(SCRIPT), "--quick", "--subscriptions", "200"]
    command += ["--peer-subscriptions", "40", "--output", str(output)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(output.read_text())
    rows = {row["key"]: row for row in report["rows"]}
    assert set(rows) == ROWS
    for key, row in rows.items():
        expected = 200 if key == "eventpatterns" else 40
        assert row["notifications"] == row["verified"] == expected, key
        assert row["complete"] is True, key
        assert row["undecrypted"] == 0, key
        assert row["rejections"] == 0, key
        assert row["receiver_busy"] > 0, key
        assert row["rate"] > 0
        assert row["receiver_cpu_us"] > 0
        assert len(row["rounds"]) == 1  # --quick: one round
    assert rows["pywebpush"]["x pywebpush"] == 1.0
    assert isinstance(rows["eventpatterns"]["x pywebpush"], float)
    assert rows["eventpatterns"]["mints"] == 1  # one VAPID token for every message
    costs = report["costs"]
    assert costs["encrypt_us"] > 0
    assert costs["ecdh_us"] > 0
    assert costs["vapid_sign_us"] > 0
    # Timings: only their shape (noise can make the encryption time below ECDH's).
    assert costs["hkdf_aes_us"] == pytest.approx(max(costs["encrypt_us"] - costs["ecdh_us"], 0))
    assert "->" in report["config"]["load_average"]
    assert report["targets"][0]["target"].startswith("eventpatterns >= 5x pywebpush")
    assert "where eventpatterns' sender time goes" in done.stdout
