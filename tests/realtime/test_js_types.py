"""The JS client's ``.d.ts`` is type-checked by TypeScript itself.

``clients/js/types-test/ok.ts`` uses the whole API and must compile;
``clients/js/types-test/bad.ts`` makes one mistake per line marked ``// error`` and
tsc must report exactly those lines. The JavaScript is also checked against its own
JSDoc (``--checkJs``). TypeScript is installed with npm into ``.cache/`` at test time
(once); without npm the tests skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "js"
TYPES = CLIENT / "types-test"
TYPESCRIPT = "typescript@5.9.3"
CACHE = ROOT / ".cache" / "typescript-5.9.3"
FLAGS = [
    "--noEmit", "--strict", "--pretty", "false", "--target", "es2022",
    "--module", "nodenext", "--moduleResolution", "nodenext", "--lib", "es2022,dom",
]  # fmt: skip


@pytest.fixture(scope="module")
def tsc() -> Path:
    """The ``tsc`` of a pinned TypeScript, installed into the cache on first use."""
    binary = CACHE / "node_modules" / ".bin" / "tsc"
    if not binary.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is needed to install TypeScript")
        CACHE.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [npm, "install", "--prefix", str(CACHE), TYPESCRIPT, "--no-save", "--no-audit",
             "--no-fund", "--silent"],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        if done.returncode != 0 or not binary.exists():
            pytest.fail(f"npm install {TYPESCRIPT} failed: {done.stderr[-500:]}")
    return binary


def run_tsc(tsc: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(tsc), *FLAGS, *args], cwd=TYPES, capture_output=True, text=True, timeout=180
    )


def test_a_program_using_the_whole_api_type_checks(tsc: Path) -> None:
    done = run_tsc(tsc, "ok.ts")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mistakes_are_reported_on_exactly_the_marked_lines(tsc: Path) -> None:
    lines = (TYPES / "bad.ts").read_text(encoding="utf-8").splitlines()
    expected = {n for n, line in enumerate(lines, 1) if line.rstrip().endswith("// error")}
    assert len(expected) >= 8
    done = run_tsc(tsc, "bad.ts")
    assert done.returncode != 0
    reported = {
        int(n) for n in re.findall(r"^bad\.ts\((\d+),\d+\): error TS\d+", done.stdout, re.M)
    }
    assert reported == expected, done.stdout


def test_the_javascript_agrees_with_its_jsdoc(tsc: Path) -> None:
    done = run_tsc(tsc, "--allowJs", "--checkJs", "../eventpatterns.js")
    assert done.returncode == 0, done.stdout + done.stderr
