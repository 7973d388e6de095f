"""The JavaScript client's own unit tests (``node --test clients/js/``), when Node is here.

They cover what needs no server: the backoff bounds, position ordering and
de-duplication, and the client's reactions to each server frame and close code
(against a scripted fake WebSocket). ``test_browser.py`` runs the client for real.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

CLIENT_DIR = Path(__file__).resolve().parents[2] / "clients" / "js"


def test_node_unit_tests_pass() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (the JS client's unit tests need Node >= 20)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    major = re.match(r"v(\d+)", version.stdout)
    if major is None or int(major.group(1)) < 20:
        pytest.skip(f"node {version.stdout.strip()} is too old for these tests (need >= 20)")
    result = subprocess.run(
        [node, "--test", str(CLIENT_DIR)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=CLIENT_DIR,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # An empty run also exits 0: make sure the tests ran.
    passed = re.search(r"^# pass (\d+)$", result.stdout, re.MULTILINE)
    assert passed is not None, result.stdout
    assert int(passed.group(1)) >= 10, result.stdout
    assert re.search(r"^# fail 0$", result.stdout, re.MULTILINE), result.stdout
