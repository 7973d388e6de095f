"""The CLI's credentials: ``--token`` (Bearer) and ``--api-key`` (X-Api-Key) against serve."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from eventpatterns.cli import main
from eventpatterns.realtime import APIKeyAuthorizer

from .conftest import ENV, ROOT


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A serve with API keys: one that may publish, one that may only read."""
    keys = APIKeyAuthorizer([])
    publisher, publisher_record = keys.create_key("svc", scopes=["publish"])
    reader, reader_record = keys.create_key("alice", scopes=["read"])
    folder = tmp_path_factory.mktemp("keys")
    records = [publisher_record.to_dict(), reader_record.to_dict()]
    (folder / "keys.json").write_text(json.dumps(records), encoding="utf-8")
    (folder / "publisher.key").write_text(publisher + "\n", encoding="utf-8")
    command = [
        sys.executable, "-m", "eventpatterns", "serve", "--port", "0",
        "--api-key-file", str(folder / "keys.json"),
    ]  # fmt: skip
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV, cwd=ROOT, text=True
    ) as process:
        assert process.stdout is not None
        urls: dict[str, str] = {}
        while "Publish" not in urls:
            name, _, url = process.stdout.readline().partition(":")
            assert name, "serve exited"
            urls[name] = url.strip()
        try:
            base = urls["Publish"].removeprefix("POST ").removesuffix("/publish")
            yield base, {"publisher": f"@{folder / 'publisher.key'}", "reader": reader}
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)


def test_api_keys_reach_publish_and_listen(
    keyed: tuple[str, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, keys = keyed
    kind = f"cli.auth.{uuid.uuid4().hex[:8]}"
    publish = ["publish", "--type", kind, "--source", "/a", "--url", url]
    assert main(publish) == 2
    assert "401" in capsys.readouterr().err  # no credentials
    assert main([*publish, "--api-key", keys["reader"]]) == 2
    assert "403 this needs the 'publish' scope" in capsys.readouterr().err
    assert main([*publish, "--api-key", keys["publisher"]]) == 0  # from @file
    published = json.loads(capsys.readouterr().out)
    listen = ["listen", "--url", url, "--since", "earliest", "--count", "1", "--quiet"]
    assert main([*listen, "--pattern", json.dumps({"type": [kind]})]) == 2
    assert "401" in capsys.readouterr().err
    assert (
        main([*listen, "--pattern", json.dumps({"type": [kind]}), "--api-key", keys["reader"]]) == 0
    )
    assert json.loads(capsys.readouterr().out)["id"] == published["id"]


def test_a_token_goes_as_bearer(
    keyed: tuple[str, dict[str, str]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, keys = keyed  # the API key authorizer also reads a bearer token
    args = ["publish", "--type", "t", "--source", "/a", "--url", url]
    assert main([*args, "--token", "not-a-valid-key"]) == 2
    err = capsys.readouterr().err
    assert "401" in err
    assert err.count("\n") == 1
    assert main([*args, "--token", keys["publisher"]]) == 0
    assert "position" in json.loads(capsys.readouterr().out)
    monkeypatch.setenv("EVENTPATTERNS_TOKEN", keys["reader"])  # the default --token
    assert main(args) == 2
    assert "403" in capsys.readouterr().err
