"""``eventpatterns jobs`` against a real serve running the test job kinds."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
import uuid

import pytest

from eventpatterns._cli_jobs import ProgressView
from eventpatterns.cli import main

from .conftest import ENV, ROOT, cli


def _submit(server: str, kind: str, gate: str, capsys: pytest.CaptureFixture[str]) -> str:
    args = ["jobs", "submit", kind, "--input", json.dumps({"gate": gate}), "--url", server]
    assert main(args) == 0
    job = json.loads(capsys.readouterr().out)
    assert job["kind"] == kind
    assert job["state"] in ("pending", "running")
    return str(job["id"])


def _open(server: str, gate: str) -> None:
    args = ["publish", "--type", "cli.test.go", "--source", "/t", "--subject", gate]
    assert main([*args, "--url", server]) == 0


def test_submit_status_watch_result(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    gate = uuid.uuid4().hex
    job_id = _submit(server, "gated", gate, capsys)
    assert main(["jobs", "status", job_id, "--url", server + "/jobs"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == job_id
    command = [sys.executable, "-m", "eventpatterns", "jobs", "watch", job_id, "--url", server]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=ROOT, text=True
    ) as watch:
        assert watch.stdout is not None
        assert watch.stderr is not None
        lines = [watch.stdout.readline()]
        while "50%" not in lines[-1]:
            lines.append(watch.stdout.readline())
            assert lines[-1], lines
        assert lines[-1] == "running 50% waiting at the gate\n"
        _open(server, gate)
        rest = watch.stdout.read().splitlines()
        assert watch.wait(timeout=30) == 0, watch.stderr.read()
        watch.stderr.close()
    assert rest[-1] == f"succeeded: {server}/jobs/{job_id}/result"
    assert rest[-2] == "succeeded 100% waiting at the gate"
    capsys.readouterr()
    assert main(["jobs", "result", job_id, "--url", server]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"opened_by"}


def test_watch_draws_a_bar_on_a_terminal(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    gate = uuid.uuid4().hex
    job_id = _submit(server, "gated", gate, capsys)
    leader, follower = pty.openpty()
    command = [sys.executable, "-m", "eventpatterns", "jobs", "watch", job_id, "--url", server]
    with subprocess.Popen(
        command, stdout=follower, stderr=subprocess.DEVNULL, env=ENV, cwd=ROOT
    ) as w:
        os.close(follower)
        seen = b""
        while b"50%" not in seen:
            seen += os.read(leader, 4096)
        _open(server, gate)
        while b"succeeded:" not in seen or not seen.endswith(b"\n"):
            try:
                seen += os.read(leader, 4096)
            except OSError:  # EIO: the watch exited and closed the terminal
                break
        assert w.wait(timeout=30) == 0
    os.close(leader)
    text = seen.decode()
    assert "\r[###############---------------]  50% running  waiting at the gate" in text
    assert "\r[##############################] 100% succeeded  waiting at the gate" in text
    assert text.rstrip().endswith(f"succeeded: {server}/jobs/{job_id}/result")


def test_a_failed_job_exits_1(server: str) -> None:
    done = cli("jobs", "submit", "fails", "--input", '{"gate": "g1"}', "--watch", "--url", server)
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines()[-1] == "failed: RuntimeError: gate g1 is broken"
    assert done.stderr.startswith("job ")


def test_cancel_then_watch_exits_1(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    job_id = _submit(server, "gated", uuid.uuid4().hex, capsys)
    assert main(["jobs", "cancel", job_id, "--url", server]) == 0
    assert json.loads(capsys.readouterr().out)["cancel_requested"] is True
    assert main(["jobs", "watch", job_id, "--url", server]) == 1
    assert capsys.readouterr().out.splitlines()[-1].startswith("cancelled")


def test_the_same_idempotency_key_gives_the_same_job(
    server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    key = ["--idempotency-key", uuid.uuid4().hex, "--url", server]
    ids = []
    for _ in range(2):
        assert main(["jobs", "submit", "fails", "--input", '{"gate": "k"}', *key]) == 0
        ids.append(json.loads(capsys.readouterr().out)["id"])
    assert ids[0] == ids[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["status", "no-such-job"], "404 no job 'no-such-job'"),
        (["watch", "no-such-job"], "404"),
        (["result", "no-such-job"], "404"),
        (["submit", "no-such-kind"], "404"),
        (["submit", "gated", "--input", "{oops"], "the input is not valid JSON"),
        (["submit", "gated", "--input", '{"gate": 5}'], "422"),
        (["submit", "a/b"], "a job kind is a name without '/'"),
    ],
)
def test_user_errors_exit_2(
    server: str, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["jobs", *args, "--url", server]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.err.count("\n") == 1
    assert captured.out == ""


def test_progress_view_prints_a_line_per_change_off_a_terminal() -> None:
    out = io.StringIO()
    view = ProgressView(out, tty=False)
    job = {"state": "running", "progress": {"fraction": 0.25, "message": "a"}}
    view.show(job)
    view.show(job)  # nothing changed: nothing printed
    view.show({"state": "running", "progress": {"fraction": None, "message": ""}})
    view.end("done")
    assert out.getvalue() == "running 25% a\nrunning ?\ndone\n"


def test_submit_watch_follows_the_job_it_submitted(server: str) -> None:
    gate = uuid.uuid4().hex
    command = [sys.executable, "-m", "eventpatterns", "jobs", "submit", "gated", "--watch"]
    with subprocess.Popen(
        [*command, "--input", json.dumps({"gate": gate}), "--url", server],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=ROOT, text=True,
    ) as watch:  # fmt: skip
        assert watch.stdout is not None
        assert watch.stderr is not None
        job_line = watch.stderr.readline()
        assert job_line.startswith("job ")
        while "50%" not in (line := watch.stdout.readline()):
            assert line
        _open(server, gate)
        assert watch.wait(timeout=30) == 0
        last = watch.stdout.read().splitlines()[-1]
        watch.stderr.close()
    assert last == f"succeeded: {server}/jobs/{job_line.split()[1]}/result"
