"""``eventpatterns bench``: runs a benchmark of this checkout and prints its table."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from eventpatterns.cli import main

from .conftest import ROOT, cli

SRC = ROOT / "src"


def test_bench_lists_the_benchmarks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench"]) == 0
    out = capsys.readouterr().out
    assert "filters" in out
    assert "bus_memory" in out
    assert "_common" not in out


@pytest.mark.slow
def test_bench_runs_a_benchmark_with_its_arguments() -> None:
    done = cli("bench", "decode", "--", "--rounds", "1", "--number", "200", "--label", "cli")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "== benchmarks/decode.py --rounds 1 --number 200 --label cli"
    assert lines[1].split()[:3] == ["workload", "decode", "ns"]
    assert any(line.startswith("bytes data (weakest)") for line in lines)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bench", "no_such_bench"], "no benchmark 'no_such_bench'; known: bff"),
        (["bench", "decode", "--quick"], "benchmarks/decode.py has no --quick mode"),
        (["bench", "decode", "--all"], "not both"),
    ],
)
def test_bench_errors(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_bench_outside_a_checkout_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "filters", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "bench runs from a source checkout" in err
    assert err.count("\n") == 1


def test_an_installed_package_finds_the_checkout_it_runs_in(tmp_path: Path) -> None:
    # As after `pip install .` in a clone: the package is elsewhere (site-packages);
    # run from the clone, bench finds the benchmarks there; run elsewhere, it says so.
    site = tmp_path / "site"
    shutil.copytree(SRC / "eventpatterns", site / "eventpatterns")
    env = {**os.environ, "PYTHONPATH": str(site)}
    command = [sys.executable, "-m", "eventpatterns", "bench"]

    def run(cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=60)

    in_clone = run(SRC.parent)
    assert in_clone.returncode == 0, in_clone.stderr
    assert "  bff " in in_clone.stdout
    elsewhere = run(tmp_path)
    assert elsewhere.returncode == 2
    assert elsewhere.stderr.startswith("eventpatterns bench: error: no benchmarks under ")
    assert elsewhere.stderr.count("\n") == 1
