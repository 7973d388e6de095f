"""A real ``eventpatterns serve`` subprocess for the CLI tests, and helpers to run the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}


def cli(*args: str, stdin: str | bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m eventpatterns ARGS`` as a subprocess (text output)."""
    data = stdin.decode() if isinstance(stdin, bytes) else stdin
    return subprocess.run(
        [sys.executable, "-m", "eventpatterns", *args],
        input=data, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=60,
    )  # fmt: skip


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A serve on a free port with the test job kinds; yields its base URL."""
    command = [
        sys.executable, "-m", "eventpatterns", "serve", "--port", "0",
        "--jobs", "tests.cli.jobs_app:setup",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV, cwd=ROOT, text=True
    )
    assert process.stdout is not None
    urls: dict[str, str] = {}
    while "Jobs" not in urls:
        line = process.stdout.readline()
        assert line, "serve exited before announcing its URLs"
        name, _, url = line.partition(":")
        urls[name] = url.strip()
    try:
        yield urls["Jobs"].removesuffix("/jobs")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(timeout=20) == 0
        finally:
            if process.returncode is None:
                process.kill()
                process.wait()
            process.stdout.close()
