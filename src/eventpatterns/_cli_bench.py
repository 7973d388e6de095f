"""``eventpatterns bench``: run the checkout's benchmarks (``benchmarks/NAME.py``).

The benchmarks are not in the wheel: they live in the source repository beside
``src/``. This command finds them from the package's location (or ``--root``), runs
each named one with this Python and the checkout's ``src`` first on the path, and
lets it print its table; arguments after ``--`` go to every benchmark.
"""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ._cli_common import EXIT_FAILED, EXIT_OK, UsageError

__all__ = ["add_parser", "available", "find_root"]

_EXAMPLES = """\
examples:
  eventpatterns bench                      # list the benchmarks
  eventpatterns bench filters --quick
  eventpatterns bench bus_memory -- --events 20000 --repeat 1
  eventpatterns bench --all --quick        # every benchmark that has a quick mode

Runs from a source checkout (git clone ...; pip install -e '.[all]', or pip install .
and run it in the clone); the benchmarks print their tables and write JSON under
benchmarks/results/.
"""


def find_root(given: str | None = None) -> Path:
    """Return the checkout holding ``benchmarks/``.

    From ``--root``; else the checkout the package is imported from (an editable
    install), else the current directory (``pip install .`` from a clone, run there).

    Raises:
        UsageError: No ``benchmarks/`` directory there (an installed wheel).
    """
    if given is not None:
        candidates = [Path(given)]
    else:  # src/eventpatterns/_cli_bench.py: the checkout is three levels up
        candidates = [Path(__file__).resolve().parents[2], Path.cwd()]
    for root in candidates:
        if (root / "benchmarks" / "_common.py").is_file():
            return root
    raise UsageError(
        f"no benchmarks under {str(candidates[-1])[:200]!r}: bench runs from a source"
        " checkout of eventpatterns (clone the repository and run it there)"
        + ("" if given is not None else ", or give its directory with --root")
    )


def _summary(path: Path) -> tuple[str, bool]:
    """The first line of a benchmark's docstring, and whether it takes ``--quick``."""
    try:
        text = path.read_text(encoding="utf-8")
        doc = ast.get_docstring(ast.parse(text)) or ""
    except (OSError, SyntaxError, ValueError):
        return "", False
    line = doc.strip().splitlines()[0] if doc.strip() else ""
    return line.removeprefix("Benchmark: "), '"--quick"' in text


def available(root: Path) -> dict[str, tuple[str, bool]]:
    """The benchmarks of a checkout: name to (summary, has ``--quick``)."""
    return {
        path.stem: _summary(path)
        for path in sorted((root / "benchmarks").glob("*.py"))
        if not path.name.startswith("_")
    }


def _bench(args: argparse.Namespace) -> int:
    root = find_root(args.root)
    found = available(root)
    names: list[str] = list(args.names)
    if args.all:
        if names:
            raise UsageError("give benchmark names or --all, not both")
        names = [n for n, (_, quick) in found.items() if quick or not args.quick]
    if not names:
        width = max(len(n) for n in found) if found else 0
        print("benchmarks (eventpatterns bench NAME [--quick] [-- ARGS]):")
        for name, (summary, quick) in found.items():
            print(f"  {name.ljust(width)}  {summary}{'' if quick else '  (no --quick)'}")
        return EXIT_OK
    for name in names:
        if name not in found:
            known = ", ".join(found)
            raise UsageError(f"no benchmark {name[:100]!r}; known: {known}")
        if args.quick and not found[name][1]:
            raise UsageError(f"benchmarks/{name}.py has no --quick mode; run it without")
    env = {**os.environ}
    env["PYTHONPATH"] = os.pathsep.join([str(root / "src"), *filter(None, [env.get("PYTHONPATH")])])
    failed: list[str] = []
    for name in names:
        command = [sys.executable, f"{name}.py", *(["--quick"] if args.quick else []), *args.extra]
        print(f"== benchmarks/{name}.py {' '.join(command[2:])}".rstrip(), flush=True)
        try:
            done = subprocess.run(command, cwd=root / "benchmarks", env=env, check=False)  # noqa: S603
        except KeyboardInterrupt:
            return EXIT_FAILED
        if done.returncode != 0:
            failed.append(f"{name} (exit {done.returncode})")
    if failed:
        print(f"eventpatterns bench: failed: {', '.join(failed)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def split_extra(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split ``bench ... -- ARGS`` into the command's arguments and the benchmarks'."""
    if argv[:1] == ["bench"] and "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1 :]
    return argv, []


def add_parser(commands: Any) -> None:
    """Add ``bench`` to the command line's subparsers."""
    bench = commands.add_parser(
        "bench",
        help="run the benchmarks of a source checkout and print their tables",
        description="Run benchmarks/NAME.py from the checkout; no NAME lists them.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (in order)")
    bench.add_argument("--quick", action="store_true", help="a short run (the CI smoke size)")
    bench.add_argument("--all", action="store_true", help="run every benchmark")
    bench.add_argument("--root", metavar="DIR", help="the checkout (default: this package's)")
    bench.set_defaults(handler=_bench, extra=[])
