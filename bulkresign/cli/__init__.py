"""The ``bulkresign`` command: one sub-command per module in this package.

Every sub-command module exposes ``register(subparsers)``, which adds its parser and sets
``func`` to a handler taking the parsed arguments and returning an exit code. Errors of the
:class:`~bulkresign.errors.BulkResignError` tree reach the operator as one line on stderr, never as
a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from enum import IntEnum
from pathlib import Path
from types import FrameType
from typing import TextIO, cast

from bulkresign._version import __version__
from bulkresign.cli.streams import Forgiving
from bulkresign.errors import BulkResignError

__all__ = [
    "ExitCode",
    "cancelled_by_sigterm",
    "describe",
    "main",
    "operator_error",
    "printable",
    "raise_if_terminated",
    "settle_outcome",
]


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


#: The signals that stop a command gracefully besides Ctrl-C's SIGINT.
_STOPPING = (signal.SIGTERM, signal.SIGHUP)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, told like a Ctrl-C until a run installs its own handler."""


#: Set once a SIGTERM arrived, so that the interruption it causes is told as "terminated".
_terminated: list[int] = []


def _terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM outside a run's own watch: unwind as Ctrl-C does, never by raising inside an
    event loop (an exception at an arbitrary await point there can wedge anyio's threads)."""
    if _terminated or _settled:
        # the first is already unwinding: a second must not break into its cleanup; or the
        # command's outcome is decided, and a signal now must not turn it into "terminated"
        return
    _terminated.append(signum)
    if _loading:
        return  # raised once the modules have loaded (_loading_modules)
    # asyncio is looked up, not imported: a command that never loaded it runs no event loop.
    running = getattr(sys.modules.get("asyncio"), "get_running_loop", None)
    try:
        loop = running() if running is not None else None
    except RuntimeError:
        loop = None
    if loop is None:
        raise _Terminated  # plain code: the exception unwinds it, as Ctrl-C's does
    if _cancellers:
        loop.call_soon_threadsafe(_cancellers[-1])  # the command's own way out
        return
    on_sigint = signal.getsignal(signal.SIGINT)
    if callable(on_sigint) and on_sigint is not signal.default_int_handler:
        on_sigint(signal.SIGINT, frame)  # asyncio's Ctrl-C: cancel the main task, then unwind
        return
    signal.signal(signum, signal.SIG_DFL)  # no graceful path: end as Python would
    os.kill(os.getpid(), signum)


#: Set while a sub-command's modules load (:func:`_loading_modules`).
_loading: list[bool] = []
#: A Ctrl-C held while they load.
_held: list[int] = []


def _hold(signum: int, frame: FrameType | None) -> None:
    _held.append(signum)


@contextlib.contextmanager
def _loading_modules(watched: bool) -> Iterator[None]:
    """Hold SIGTERM, SIGHUP and Ctrl-C while the sub-command's modules load, and raise them
    once loaded: an exception raised inside an import can leave a module half made (asyncio
    without ``get_running_loop``) or crash a C extension's initialisation (orjson's segfaulted)."""
    _loading.append(True)
    _held.clear()
    hold = watched and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    before = signal.signal(signal.SIGINT, _hold) if hold else None
    try:
        yield
    finally:
        _loading.clear()
        if before is not None:
            signal.signal(signal.SIGINT, before)
    if _terminated:
        raise _Terminated
    if _held:
        raise KeyboardInterrupt


#: Set once a command's outcome is decided (:func:`settle_outcome`).
_settled: list[bool] = []


def settle_outcome() -> None:
    """The command's outcome is decided (a run finished): from now on a SIGTERM is ignored, so
    the exit code tells what was done, not when the signal came (the run's last milliseconds,
    its summary)."""
    _settled.append(True)


#: How the command running in an event loop is cancelled (:func:`cancelled_by_sigterm`).
_cancellers: list[Callable[[], object]] = []


@contextlib.contextmanager
def cancelled_by_sigterm(cancel: Callable[[], object]) -> Iterator[None]:
    """Within the block, a SIGTERM calls ``cancel`` in the event loop (a cancel scope's): the
    graceful way out whether or not asyncio handles Ctrl-C (it does not when SIGINT is ignored,
    as in a background job). Afterwards :func:`raise_if_terminated` turns it into the exit."""
    _cancellers.append(cancel)
    try:
        yield
    finally:
        _cancellers.remove(cancel)


def raise_if_terminated() -> None:
    """Unwind as a SIGTERM does if one arrived (after a cancelled event loop has returned)."""
    if _terminated:
        raise _Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command and return its exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    named = next((w for w in words if not w.startswith("-")), None)
    # Python's default for SIGTERM ends the process on the spot (exit 143, nothing said, no
    # `finally`): while modules load, at a prompt, or in a command that watches no signal, let it
    # unwind as a Ctrl-C does. A run's dispatcher installs its own, graceful handler meanwhile.
    _terminated.clear()
    _settled.clear()
    watched = threading.current_thread() is threading.main_thread()
    # A hangup (the terminal closed) stops a command as SIGTERM does, gracefully.
    previous = {s: signal.signal(s, _terminate) for s in _STOPPING} if watched else {}
    # What a command says on stderr outlives the reader going away (bulkresign.cli.streams).
    stderr = sys.stderr
    sys.stderr = cast(TextIO, Forgiving(stderr))
    code: int = ExitCode.STOPPED
    args: argparse.Namespace | None = None
    try:
        # Inside the try: a Ctrl-C while the sub-command's modules load is an interruption too.
        with _loading_modules(watched):
            parser = build_parser(named if named in _COMMANDS else None)
        args = parser.parse_args(words)
        handler: Handler = args.func
        code = handler(args)
    except BrokenPipeError:
        # Whoever read stdout stopped (`| head`): not an error. Point stdout at /dev/null so the
        # interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = ExitCode.OK
    except KeyboardInterrupt as exc:
        said = "terminated" if isinstance(exc, _Terminated) or _terminated else "interrupted"
        print(f"bulkresign: {said}", file=sys.stderr)
        code = ExitCode.STOPPED
    except (BulkResignError, OSError, BaseExceptionGroup) as exc:
        error = operator_error(exc)
        if error is None:
            raise
        print(f"bulkresign: error: {describe(error)}", file=sys.stderr)
        code = ExitCode.USAGE
    except sqlite3.DatabaseError as exc:  # a damaged state file, met by a command reading it
        from bulkresign.sqlfile import told  # only on this path: a command may never load it

        where = Path(getattr(args, "state", None) or "the state file")
        print(f"bulkresign: error: {told(where, exc)}", file=sys.stderr)
        code = ExitCode.USAGE
    finally:
        if watched and argv is None:
            _ignore_signals_at_exit()  # and stderr stays forgiving for the interpreter's exit
        else:
            for signum, old in previous.items():
                signal.signal(signum, signal.SIG_DFL if old is None else old)
            sys.stderr = stderr
    return code


def _ignore_signals_at_exit() -> None:
    """The command is done; what remains is the interpreter's exit (the console script's). A
    signal now must not turn a finished command into death by signal: Python resets a handler
    of its own to the default while it finalizes (and any thread may take the signal), but not
    an ignored signal, so the process ends with the command's own code."""
    with contextlib.suppress(OSError):
        sys.stdout.flush()
        sys.stderr.flush()
    for signum in (*_STOPPING, signal.SIGINT):
        signal.signal(signum, signal.SIG_IGN)


def operator_error(exc: BaseException) -> BulkResignError | OSError | None:
    """The error to tell the operator about, or ``None`` for a bug (which keeps its traceback).

    Ours, or the system's about a file (read-only, full, gone). anyio's task groups wrap whatever
    leaves them (https://anyio.readthedocs.io/en/stable/tasks.html#handling-multiple-errors-in-a-task-group):
    a group of nothing but such errors is told by its first.
    """
    if isinstance(exc, BulkResignError | OSError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        ours, other = exc.split((BulkResignError, OSError))
        if ours is not None and other is None:
            return operator_error(ours.exceptions[0])
    return None


def describe(error: BulkResignError | OSError) -> str:
    """One printable line for :func:`operator_error`'s result."""
    if isinstance(error, OSError) and error.filename is not None:
        return printable(f"{error.filename}: {error.strerror}")
    return printable(str(error))


def printable(text: str) -> str:
    """``text`` on one line with nothing a terminal would act on: control characters escaped."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


if __name__ == "__main__":
    sys.exit(main())
