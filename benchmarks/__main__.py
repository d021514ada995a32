"""``python -m benchmarks [--big] [--only NAME ...]``: run the benchmarks in order.

The quick suite takes a few minutes; ``--big`` runs the large sizes (10M IDs end to end and on
resume, 100M lines of ingest). Each benchmark runs in a process of its own, so none inherits
another's memory or threads. A module that is not there is skipped with a note. Exit code 1 when
any benchmark missed a target.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time

from benchmarks import SUITE


def main(argv: list[str]) -> int:
    """Run the chosen benchmarks; the worst exit code wins."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--big", action="store_true", help="the large sizes (tens of minutes)")
    parser.add_argument(
        "--only",
        action="append",
        choices=list(SUITE),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(SUITE)}",
    )
    args = parser.parse_args(argv)
    passed = ["--big"] if args.big else []
    worst = 0
    for name, module_name in SUITE.items():
        if args.only and name not in args.only:
            continue
        if importlib.util.find_spec(f"benchmarks.{module_name}") is None:
            print(f"benchmarks: {name}: benchmarks/{module_name}.py is not there; skipped")
            continue
        print(f"\n=== {name} ===", flush=True)
        started = time.monotonic()
        command = [sys.executable, "-m", f"benchmarks.{module_name}", *passed]
        code = subprocess.run(command, check=False).returncode
        print(f"=== {name}: {time.monotonic() - started:.0f} s, exit {code} ===", flush=True)
        worst = max(worst, code)
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
