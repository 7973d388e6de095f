"""The ``eventpatterns test-pattern`` command."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eventpatterns.cli import main

PATTERN = '{"source": ["shop"], "detail": {"total": [{"numeric": [">", 100]}]}}'
YES = '{"source": "shop", "detail": {"total": 250}}'
NO = '{"source": "shop", "detail": {"total": 50}}'


def test_true_and_false(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test-pattern", PATTERN, YES]) == 0
    assert capsys.readouterr().out == "true\n"
    assert main(["test-pattern", PATTERN, NO]) == 0
    assert capsys.readouterr().out == "false\n"


def test_explain(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test-pattern", PATTERN, NO, "--explain"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("false\nno match\n")
    assert "FAIL $.detail.total" in out
    assert "no alternative accepts 50" in out


def test_explain_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test-pattern", PATTERN, YES, "--explain", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["matched"] is True
    assert main(["test-pattern", PATTERN, NO, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["matched"] is False
    assert data["branches"][0]["checks"][0]["path"] == "$.detail.total"


def test_files_and_stdin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "p.json").write_text(PATTERN, encoding="utf-8")
    (tmp_path / "e.json").write_text(YES, encoding="utf-8")
    assert main(["test-pattern", f"@{tmp_path / 'p.json'}", f"@{tmp_path / 'e.json'}"]) == 0
    assert capsys.readouterr().out == "true\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(NO))
    assert main(["test-pattern", PATTERN, "@-"]) == 0
    assert capsys.readouterr().out == "false\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (['{"source": "shop"}', YES], "invalid pattern at $.source: "),
        (["{nope", YES], "the pattern is not valid JSON"),
        ([PATTERN, "{nope"], "invalid event: not valid JSON"),
        ([PATTERN, "[1, 2]"], "invalid event: an event must be a JSON object"),
        ([PATTERN, "@/nonexistent/event.json"], "cannot read the event"),
    ],
)
def test_errors_exit_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test-pattern", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
    assert captured.err.startswith("eventpatterns test-pattern: error: ")


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["test-pattern", PATTERN]) == 2
    assert "usage:" in capsys.readouterr().err
    assert main(["--help"]) == 0
    assert "test-pattern" in capsys.readouterr().out


def test_subprocess() -> None:
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    run = subprocess.run(
        [sys.executable, "-m", "eventpatterns.cli", "test-pattern", PATTERN, YES, "--explain"],
        capture_output=True, text=True, env=env, check=False, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("true\nmatch\n")
    bad = subprocess.run(
        [sys.executable, "-m", "eventpatterns.cli", "test-pattern", "[]", YES],
        capture_output=True, text=True, env=env, check=False, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "a pattern must be a JSON object" in bad.stderr


def _run(args: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "eventpatterns.cli", "test-pattern", *args],
        input=stdin, capture_output=True, env=env, check=False, timeout=60,
    )  # fmt: skip


def _one_error_line(run: subprocess.CompletedProcess[bytes]) -> str:
    assert run.returncode == 2
    assert run.stdout == b""
    err = run.stderr.decode("utf-8")
    assert err.count("\n") == 1, err
    assert err.startswith("eventpatterns test-pattern: error: ")
    assert "Traceback" not in err
    return err


def test_non_utf8_file_and_stdin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "p.json").write_bytes(b'{"a": ["\xff"]}')
    assert main(["test-pattern", f"@{tmp_path / 'p.json'}", YES]) == 2
    err = capsys.readouterr().err
    assert "is not UTF-8 text (byte 8)" in err
    assert err.count("\n") == 1
    err = _one_error_line(_run([PATTERN, "@-"], stdin=b'{"source": "\xc3"}'))
    assert "the event from standard input is not UTF-8 text" in err


def test_utf8_bom_and_stdin_bytes() -> None:
    run = _run(["@-", YES], stdin=b"\xef\xbb\xbf" + PATTERN.encode())
    assert run.returncode == 0, run.stderr
    assert run.stdout == b"true\n"


@pytest.mark.parametrize("flag", ["--explain", "--json"])
def test_lone_surrogate_is_printed_escaped(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    event = '{"source": "\\ud800", "detail": {"total": 5}}'
    assert main(["test-pattern", PATTERN, event, flag]) == 0
    out = capsys.readouterr().out
    assert out.startswith("false\n") if flag == "--explain" else json.loads(out)["matched"] is False
    assert "\\ud800" in out


def test_lone_surrogate_in_a_subprocess() -> None:
    run = _run([PATTERN, '{"source": "\\ud800"}', "--explain"])
    assert run.returncode == 0, run.stderr
    assert b"\\ud800" in run.stdout
    run = _run([PATTERN, '{"source": "\\ud800"}', "--json"])
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["branches"][0]["checks"][0]["seen"] == ["\ud800"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (['{"a": [' + "1" * 5000 + "]}", YES], "not valid JSON"),
        ([PATTERN, '{"n": ' + "9" * 5000 + "}"], "invalid event: not valid JSON"),
        (["[" * 100_000, YES], "characters of JSON text; the limit is 4096"),
        (["[" * 4000, YES], "not valid JSON"),
        ([PATTERN, "[" * 100_000], "invalid event: not valid JSON"),
        (['{"a": ["' + "x" * 100_000 + '"]}', YES], "the limit is 4096"),
        (['{"a": [{"' + "x" * 3000 + '": 1}]}', YES], "unrecognized operator"),
    ],
)
def test_hostile_input_is_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["test-pattern", *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert len(err) < 600
