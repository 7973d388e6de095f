"""Smoke test of benchmarks/jobs.py: its quick mode runs, every row completes every job."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "jobs.py"
ROWS = {
    "arq", "arq-default", "celery-solo", "celery-prefork2", "raw", "ep-memory", "ep-redis",
    "ep-redis-watch", "ep-redis-outbox", "ep-redis-no-outbox", "raw-256B", "arq-256B",
    "ep-redis-256B", "arq-1000", "ep-redis-1000",
}  # fmt: skip
JOBS = 30


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_quick_run_reports_every_row_complete(tmp_path: Path) -> None:
    output = tmp_path / "jobs.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    # Thirty jobs per row, ten in flight, one round; twenty more under MONITOR.
    command = [sys.executable, str(SCRIPT), "--quick", "--jobs", str(JOBS), "--inflight", "10"]
    command += ["--account", "20", "--logs", str(tmp_path / "logs"), "--output", str(output)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    report = json.loads(output.read_text())
    rows = {row["key"]: row for row in report["rows"]}
    assert set(rows) == ROWS
    for key, row in rows.items():
        if row["complete"] == "skipped":  # arq's venv could not be built here
            assert key.startswith("arq"), key
            assert row["note"].startswith("arq not available"), row
            continue
        assert row["complete"] is True, (key, row.get("note"))
        (run,) = row["rounds"]  # --quick: one round
        assert run["jobs"] == run["completed"] == JOBS, key
        assert run["jobs_per_s"] > 0
        assert math.isfinite(run["p99_ms"])
        assert run["p99_ms"] >= run["p50_ms"] > 0
        if key == "ep-memory":
            assert run["commands_per_job"] == 0  # one process, no Redis
        else:  # every job went through Redis, and the MONITOR pass saw it
            assert run["commands_per_job"] >= 3, key
            # scripts batch the jobs of one loop iteration: under one command sent per
            # job may run all of a job's commands (the scripted ones count those)
            assert run["sent_per_job"] > 0, key
            assert run["sent_per_job"] + run["scripted_per_job"] >= 2, key
    assert rows["raw"]["sent over raw"] == 0.0
    assert rows["celery-solo"]["x celery"] == 1.0 or rows["celery-prefork2"]["x celery"] == 1.0
    if rows["arq"]["complete"] is True:
        assert rows["arq"]["x arq"] == 1.0
        assert rows["arq-default"]["p50 ms"] > rows["arq"]["p50 ms"]  # 0.5 s polling shows
    targets = {t["target"] for t in report["targets"]}
    assert "ep-redis >= 1x tuned arq (jobs/s)" in targets
    assert "complete" in done.stdout  # the table was printed
