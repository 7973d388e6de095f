"""``eventpatterns publish`` and ``listen`` against a real serve and a real Redis."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from eventpatterns.cli import main

from .conftest import ENV, ROOT, cli


def _type() -> str:
    return f"cli.test.{uuid.uuid4().hex[:12]}"


def _lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def test_publish_then_listen_over_http(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    kind = _type()
    for n in (1, 2, 3):
        args = ["publish", "--type", kind, "--source", "/cli", "--data", json.dumps({"n": n})]
        assert main([*args, "--url", server]) == 0
    answers = _lines(capsys.readouterr().out)
    assert [set(a) for a in answers] == [{"id", "position"}] * 3
    pattern = json.dumps({"type": [kind], "data": {"n": [{"numeric": [">", 1]}]}})
    args = ["listen", "--url", server, "--pattern", pattern, "--since", "earliest"]
    assert main([*args, "--count", "2"]) == 0
    captured = capsys.readouterr()
    events = _lines(captured.out)
    assert [e["data"] for e in events] == [{"n": 2}, {"n": 3}]
    assert [e["id"] for e in events] == [a["id"] for a in answers[1:]]
    assert "subscribed" in captured.err


def test_publish_every_flag_and_a_whole_event(
    server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    kind = _type()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b'{"from": "stdin"}')))
    flags = ["--subject", "order-7", "--id", "fixed-id-1", "--ext", "tenant=acme", "--data", "-"]
    assert main(["publish", "--type", kind, "--source", "/cli", *flags, "--url", server]) == 0
    whole = {"specversion": "1.0", "id": "whole-1", "type": kind, "source": "/f", "data": [1]}
    (tmp_path / "event.json").write_text(json.dumps(whole), encoding="utf-8")
    assert main(["publish", "--event", f"@{tmp_path / 'event.json'}", "--url", server]) == 0
    capsys.readouterr()
    args = ["listen", "--url", server, "--pattern", json.dumps({"type": [kind]})]
    assert main([*args, "--since", "earliest", "--count", "2", "--format", "pretty"]) == 0
    out = capsys.readouterr().out
    assert out.count("# position ") == 2
    assert f"{kind} from /cli" in out
    assert '"tenant": "acme"' in out
    assert '"subject": "order-7"' in out
    assert '"from": "stdin"' in out
    assert '"id": "whole-1"' in out


def test_listen_live_as_a_subprocess_and_ctrl_c_ends_it_with_0(server: str) -> None:
    kind = _type()
    command = [sys.executable, "-m", "eventpatterns", "listen", "--url", server]
    with subprocess.Popen(
        [*command, "--pattern", json.dumps({"type": [kind]})],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=ROOT, text=True,
    ) as process:  # fmt: skip
        try:
            assert process.stderr is not None
            assert process.stdout is not None
            assert "subscribed" in process.stderr.readline()  # live from here on
            published = cli("publish", "--type", kind, "--source", "/live", "--url", server)
            assert published.returncode == 0, published.stderr
            event = json.loads(process.stdout.readline())
            assert event["id"] == json.loads(published.stdout)["id"]
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=20) == 0
            assert "Traceback" not in process.stderr.read()
        finally:
            if process.returncode is None:
                process.kill()


@pytest.mark.redis
def test_publish_and_listen_directly_on_redis() -> None:
    bus = f"redis://127.0.0.1:6379/0?prefix=cli-{uuid.uuid4().hex}"
    kind = _type()
    first = cli("publish", "--type", kind, "--source", "/r", "--data", "1", "--bus", bus)
    assert first.returncode == 0, first.stderr
    second = cli("publish", "--type", kind, "--source", "/r", "--data", "2", "--bus", bus)
    position = json.loads(first.stdout)["position"]
    listened = cli("listen", "--bus", bus, "--since", position, "--count", "1", "--quiet")
    assert listened.returncode == 0, listened.stderr
    assert json.loads(listened.stdout)["id"] == json.loads(second.stdout)["id"]
    assert listened.stderr == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["publish", "--type", "t"], "give --type and --source"),
        (["publish", "--type", "t", "--source", "/s", "--data", "{"], "the data is not valid JSON"),
        (["publish", "--type", "t", "--source", "/s", "--ext", "x"], "--ext takes NAME=VALUE"),
        (["publish", "--type", "t", "--source", "/s", "--ext", "Bad=1"], "invalid event"),
        (["publish", "--event", '{"id": "1"}'], "invalid event"),
        (["publish", "--event", "{}", "--type", "t"], "give --event alone"),
        (["publish", "--type", "t", "--source", "/s", "--url", "ftp://x"], "--url must be"),
        (["publish", "--type", "t", "--source", "/s", "--token", "a\nb"], "printable ASCII"),
        (["listen", "--pattern", '{"a": 1}'], "invalid pattern at $.a"),
        (["listen", "--pattern", "[1]"], "the pattern must be a JSON object"),
        (["listen", "--count", "0"], "--count must be at least 1"),
        (["listen", "--pattern", "@/nonexistent/p.json"], "cannot read the pattern"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*args, "--url", "http://127.0.0.1:1"] if "--url" not in args else args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"eventpatterns {args[0]}: error: ")


def test_unreachable_server_non_utf8_file_and_bad_position(
    server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.json").write_bytes(b'{"a": "\xff"}')
    cases = [
        (["publish", "--type", "t", "--source", "/s", "--url", "http://127.0.0.1:1"],
         "cannot reach"),
        (["publish", "--type", "t", "--source", "/s", "--data", f"@{tmp_path / 'bad.json'}"],
         "is not UTF-8 text (byte 7)"),
        (["listen", "--url", server, "--since", "not-a-position"], "cannot resume"),
        (["listen", "--bus", "redis://127.0.0.1:1/0"], "unavailable"),
        (["publish", "--type", "t", "--source", "/s", "--bus", "nope://"], "unknown bus URL"),
        (["listen", "--bus", "memory://"], "--bus memory:// is a bus inside one process"),
    ]  # fmt: skip
    for args, message in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert message in err, (args, err)
        assert err.count("\n") == 1


def test_python_dash_m_eventpatterns_help_lists_every_command() -> None:
    done = cli("--help")
    assert done.returncode == 0
    for name in ("publish", "listen", "jobs", "dlq", "bench", "serve", "test-pattern"):
        assert name in done.stdout
    for command in (["publish"], ["listen"], ["jobs", "watch"], ["dlq", "redrive"], ["bench"]):
        shown = cli(*command, "--help")
        assert shown.returncode == 0
        assert "example" in shown.stdout, command


def test_publishing_an_id_again_answers_the_first_position(
    server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["publish", "--type", _type(), "--source", "/d", "--id", uuid.uuid4().hex]
    assert main([*args, "--url", server]) == 0
    assert main([*args, "--url", server]) == 0
    first, second = _lines(capsys.readouterr().out)
    assert second["position"] == first["position"]
    assert second.get("duplicate") is True
