"""The ``bulkresign`` command: one sub-command per module in this package.

Every sub-command module exposes ``register(subparsers)``, which adds its parser and sets
``func`` to a handler taking the parsed arguments and returning an exit code. Errors of the
:class:`~bulkresign.errors.BulkResignError` tree reach the operator as one line on stderr, never as
a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from enum import IntEnum

from bulkresign._version import __version__
from bulkresign.errors import BulkResignError

__all__ = ["ExitCode", "main", "printable"]


class ExitCode(IntEnum):
    """The documented exit codes of every sub-command."""

    OK = 0
    """Every accepted ID resigned and no line rejected (or: the command did what it was asked)."""
    PROBLEMS = 1
    """Finished, but some lines were rejected, or some IDs not found or failed for good."""
    USAGE = 2
    """Usage, input or credential error before any resign call."""
    STOPPED = 3
    """Stopped early and resumable (signal, circuit breaker, error budget)."""


#: Sub-command modules, in the order ``--help`` lists them.
_COMMANDS = ("plan", "run", "status", "report", "verify", "audit", "emulator", "bench")

Handler = Callable[[argparse.Namespace], int]


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Build the top-level parser: with every sub-command, or with ``only`` that one.

    Importing a sub-command can be costly (``run`` pulls in aiohttp, ``emulator`` the server), so
    ``main`` imports just the one named on the command line; ``--help`` imports them all.
    """
    parser = argparse.ArgumentParser(
        prog="bulkresign",
        description="Resign very large lists of GenAuth users, exactly once, resumably.",
    )
    parser.add_argument("--version", action="version", version=f"bulkresign {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMANDS if only is None else (only,):
        try:
            module = importlib.import_module(f"bulkresign.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"bulkresign.cli.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command and return its exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    named = next((w for w in words if not w.startswith("-")), None)
    parser = build_parser(named if named in _COMMANDS else None)
    args = parser.parse_args(words)
    handler: Handler = args.func
    try:
        return handler(args)
    except BulkResignError as exc:
        print(f"bulkresign: error: {printable(str(exc))}", file=sys.stderr)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        print("bulkresign: interrupted", file=sys.stderr)
        return ExitCode.STOPPED
    except BaseExceptionGroup as group:
        # anyio's task groups wrap whatever leaves them, the operator's errors included
        # (https://anyio.readthedocs.io/en/stable/tasks.html#handling-multiple-errors-in-a-task-group).
        ours, other = group.split(BulkResignError)
        if ours is None or other is not None:
            raise
        print(f"bulkresign: error: {printable(str(_first(ours)))}", file=sys.stderr)
        return ExitCode.USAGE


def printable(text: str) -> str:
    """``text`` on one line with nothing a terminal would act on: control characters escaped."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _first(group: BaseExceptionGroup[BulkResignError]) -> BulkResignError:
    inner = group.exceptions[0]
    return _first(inner) if isinstance(inner, BaseExceptionGroup) else inner


if __name__ == "__main__":
    sys.exit(main())
