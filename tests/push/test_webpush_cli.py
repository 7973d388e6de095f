"""``eventpatterns push vapid-keys``: a key pair that loads back and signs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from eventpatterns.cli import main
from eventpatterns.push import Vapid, VapidKeys, verify_vapid


def test_prints_a_pem_private_key_and_its_application_server_key(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["push", "vapid-keys"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    pem = "\n".join(
        lines[
            lines.index("-----BEGIN PRIVATE KEY-----") : lines.index("-----END PRIVATE KEY-----")
            + 1
        ]
    )
    keys = VapidKeys.from_pem(pem)
    assert lines[-1] == keys.application_server_key
    value, _ = Vapid(keys, subject="mailto:a@b.c").authorization("https://push.example", now=1e9)
    assert (
        verify_vapid(value, audience="https://push.example", now=1e9).application_server_key
        == lines[-1]
    )


def test_raw_format_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["push", "vapid-keys", "--format", "raw", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"private_key", "application_server_key"}
    assert (
        VapidKeys.from_raw(data["private_key"]).application_server_key
        == data["application_server_key"]
    )


def test_each_run_makes_a_new_pair(capsys: pytest.CaptureFixture[str]) -> None:
    main(["push", "vapid-keys", "--json"])
    first = json.loads(capsys.readouterr().out)
    main(["push", "vapid-keys", "--json"])
    second = json.loads(capsys.readouterr().out)
    assert first["private_key"] != second["private_key"]
    assert (
        VapidKeys.load(first["private_key"]).application_server_key
        == first["application_server_key"]
    )


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["push"]) == 2
    assert main(["push", "vapid-keys", "--format", "der"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_runs_as_the_installed_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "eventpatterns.cli", "push", "vapid-keys", "--json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert VapidKeys.load(json.loads(done.stdout)["private_key"])
