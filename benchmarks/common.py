"""What every benchmark shares: scratch space, an emulator process, child runs, and RESULTS.md.

Each benchmark returns a :class:`Section`; :func:`publish` prints it and writes it into
``benchmarks/RESULTS.md`` under its own ``## <name>`` heading, leaving every other section (the
ingestion benchmark's among them) as it was.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import functools
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from bulkresign.bench import Check
from bulkresign.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET

__all__ = [
    "HERE",
    "RESULTS",
    "Child",
    "EmulatorProcess",
    "Section",
    "child_env",
    "cpu_seconds",
    "high_water",
    "image_name",
    "machine",
    "median",
    "publish",
    "run_child",
    "scratch",
    "standalone",
    "table",
]

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
_TITLE = "# Benchmark results\n\nWritten by `make bench` / `make bench-big` (docs/benchmarks.md).\n"


@dataclass(frozen=True, slots=True)
class Section:
    """One benchmark's figures, ready for RESULTS.md."""

    name: str
    command: str
    body: str
    """Markdown: the figures' tables and any notes."""
    checks: tuple[Check, ...] = ()
    images: tuple[str, ...] = ()
    """PNG file names inside benchmarks/."""
    big: bool = False
    """Run at the large sizes: kept apart from the quick run's section and images."""
    started: datetime.datetime = field(default_factory=lambda: datetime.datetime.now().astimezone())

    def markdown(self) -> str:
        """The section as it appears in RESULTS.md."""
        lines = [
            f"## {self.name}" + (" (`--big`)" if self.big else ""),
            "",
            f"`{self.command}` — {self.started:%Y-%m-%d %H:%M %Z} — {machine()}",
            "",
            self.body.strip(),
            "",
        ]
        if self.checks:
            lines += ["| target | measured | wanted | met |", "|---|---|---|---|"]
            lines += [
                f"| {c.name} | {c.value} | {c.target} | {'yes' if c.ok else '**NO**'} |"
                for c in self.checks
            ]
            lines.append("")
        lines += [f"![{self.name}]({image})" for image in self.images]
        return "\n".join(lines).rstrip() + "\n"


def standalone(
    module: str, run: Callable[[bool, str], Section], argv: Sequence[str] | None = None
) -> int:
    """``python -m benchmarks.<module> [--big]``: run one benchmark, publish it; 1 if it missed."""
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{module}")
    parser.add_argument("--big", action="store_true", help="the large sizes")
    big = parser.parse_args(argv).big
    began = datetime.datetime.now().astimezone()
    section = run(big, f"python -m benchmarks.{module}" + (" --big" if big else ""))
    section = dataclasses.replace(section, started=began)  # dated when it began, not ended
    publish(section)
    return 0 if all(c.ok for c in section.checks) else 1


def image_name(name: str, big: bool) -> str:
    """A benchmark's PNG file name; a ``--big`` run's differs, so neither run's replaces the
    other's."""
    return name.removesuffix(".png") + "-big.png" if big else name


def machine() -> str:
    """A one-line description of this machine."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} × {cpu}, {mem:.0f} GiB, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def publish(section: Section) -> None:
    """Print ``section`` and put it into RESULTS.md in place of its previous version.

    Each section sits between its own marker comments; nothing outside them is touched, so
    sections other benchmarks write (the ingest one) survive every run of this one.
    """
    text = section.markdown()
    print(text, flush=True)
    slug = section.name.lower().replace(" ", "-") + ("-big" if section.big else "")
    start, end = f"<!-- bench:{slug}:start -->", f"<!-- bench:{slug}:end -->"
    block = f"{start}\n{text}{end}"
    current = RESULTS.read_text() if RESULTS.exists() else _TITLE
    if start in current and end in current:
        head, rest = current.split(start, 1)
        current = head + block + rest.split(end, 1)[1]
    else:
        current = current.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.write_text(current)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table."""
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(out)


def median(values: Sequence[float]) -> float:
    """The median (of a non-empty sequence)."""
    return statistics.median(values)


def cpu_seconds() -> float:
    """User plus system CPU seconds this process has used so far, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def scratch(under: str | None = None) -> Iterator[Path]:
    """A temporary directory (on the system temp disk unless ``under``), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="bulkresign-bench-", dir=under))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@functools.cache
def _compile_package() -> None:
    """Compile bulkresign's bytecode once, as ``pip install`` does for an installed tool.

    The checkout is installed editable, so with ``PYTHONDONTWRITEBYTECODE`` set (as on these
    machines) every child would compile the package again: ~0.15 s more to its first request
    than a user's install takes.
    """
    package = Path(__file__).resolve().parent.parent / "bulkresign"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    argv = [sys.executable, "-m", "compileall", "-q", str(package)]
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)


def child_env(host: str) -> dict[str, str]:
    """The environment for a ``bulkresign run`` child: demo keys, this host, nothing leaked."""
    _compile_package()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENAUTH_", "BULKRESIGN_"))}
    env.update(
        GENAUTH_ACCESS_KEY_ID=DEMO_ACCESS_KEY_ID,
        GENAUTH_ACCESS_KEY_SECRET=DEMO_ACCESS_KEY_SECRET,
        GENAUTH_HOST=host,
    )
    return env


@dataclass(frozen=True, slots=True)
class Child:
    """How a child process ended and what it used."""

    returncode: int
    started: float
    """``time.time()`` just before it was spawned."""
    wall: float
    cpu: float
    max_rss: int
    """Peak resident set since exec, bytes."""
    killed: bool


def run_child(
    argv: Sequence[str],
    *,
    env: dict[str, str],
    timeout: float,
    kill_when: Callable[[], bool] | None = None,
) -> Child:
    """Run ``argv`` to its end (SIGKILL after ``timeout`` s, or once ``kill_when()`` is true).

    ``os.wait4`` gives this child's own CPU time. Its ``ru_maxrss`` is no use: Python spawns
    with vfork, and exec records the *parent's* peak as the child's. The peak is read from
    ``VmHWM`` in ``/proc/PID/status`` instead, which exec starts afresh, every 5 ms until the end.
    """
    started = time.time()
    proc = subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    os.set_blocking(proc.stderr.fileno(), False)
    errors = bytearray()
    killed = False
    peak = 0
    deadline = time.monotonic() + timeout
    while True:
        peak = max(peak, high_water(proc.pid))
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        errors += proc.stderr.read() or b""
        if pid:
            break
        if time.monotonic() > deadline or (kill_when is not None and kill_when()):
            proc.send_signal(signal.SIGKILL)
            killed = True
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.005)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.time() - started
    proc.stderr.close()
    if b"Traceback" in errors:
        raise RuntimeError(f"{argv[:4]} crashed:\n{errors.decode(errors='replace')[-2000:]}")
    return Child(proc.returncode, started, wall, usage.ru_utime + usage.ru_stime, peak, killed)


def high_water(pid: int) -> int:
    """Peak resident bytes of a running process since its exec (0 once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


class EmulatorProcess:
    """``python -m bulkresign.emulator --implicit`` in a process of its own, on 127.0.0.1.

    A client measured in this process then has its CPU time to itself.
    """

    def __init__(self, *, rate_limit: float = 0.0, latency_ms: float = 0.0) -> None:
        self._args = ["--rate-limit", f"{rate_limit:g}", "--latency-ms", f"{latency_ms:g}"]
        self.url = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: contextlib.ExitStack | None = None

    def __enter__(self) -> EmulatorProcess:
        stack = contextlib.ExitStack()
        ready = stack.enter_context(scratch()) / "ready"
        argv = [sys.executable, "-m", "bulkresign.emulator", "--port", "0", "--implicit"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("GENAUTH_")}
        self._proc = subprocess.Popen(
            [*argv, "--ready-file", str(ready), *self._args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._dir = stack
        deadline = time.monotonic() + 30
        while not ready.exists():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError("the emulator process did not start")
            time.sleep(0.02)
        self.url = ready.read_text().strip()
        return self

    def __exit__(self, *_: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._dir is not None:
            self._dir.close()

    def _call(self, method: str, path: str) -> dict[str, object]:
        request = urllib.request.Request(f"{self.url}/__emulator/{path}", method=method)
        with urllib.request.urlopen(request, timeout=30) as answer:
            body: dict[str, object] = orjson.loads(answer.read())
            return body

    def oracle(self) -> dict[str, object]:
        """The oracle's summary."""
        return self._call("GET", "oracle?summary=1")

    def reset(self) -> None:
        """Zero the emulator's counters between runs."""
        self._call("POST", "reset-counters")
