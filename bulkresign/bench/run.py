"""Generated inputs, and one whole run through :func:`~bulkresign.job.run_job` against a probe.

The run's client is a child process (:mod:`bulkresign.bench.client`); the probe serves from a
thread of this one.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import numpy as np

from bulkresign.bench.client import ClientArgs, ClientResult, demo_credentials
from bulkresign.bench.probe import Probe, RunReport, summarize

__all__ = ["demo_credentials", "measure_run", "write_ids"]

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
#: An odd 64-bit constant: multiplying by it modulo 2^64 is a bijection, so IDs never repeat.
_SPREAD = np.uint64(0x9E3779B97F4A7C15)
_ROWS_PER_WRITE = 1 << 20
_PRIVATE_ENV = ("GENAUTH_", "BULKRESIGN_")


def write_ids(path: Path, n: int, *, seed: int = 0) -> Path:
    """Write ``n`` distinct lowercase 24-hex user IDs, one a line (25 bytes each), to ``path``.

    ID ``i`` is ``seed`` as 8 hex digits, then ``i`` times an odd constant modulo 2^64 as 16:
    distinct within a file, disjoint between seeds, and spread over the key space like real
    ObjectIds. About 1 s per 10M IDs.
    """
    if not 0 <= seed < 1 << 32:
        raise ValueError(f"seed must fit in 32 bits, not {seed}")
    prefix = np.frombuffer(f"{seed:08x}".encode(), dtype=np.uint8)
    with path.open("wb") as f:
        for start in range(0, n, _ROWS_PER_WRITE):
            i = np.arange(start, min(n, start + _ROWS_PER_WRITE), dtype=np.uint64)
            raw = (i * _SPREAD).astype(">u8").view(np.uint8).reshape(-1, 8)
            rows = np.empty((len(i), 25), dtype=np.uint8)
            rows[:, :8] = prefix
            rows[:, 8:24:2] = _HEX[raw >> 4]
            rows[:, 9:24:2] = _HEX[raw & 15]
            rows[:, 24] = ord("\n")
            f.write(rows.tobytes())
    return path


def measure_run(
    workdir: Path,
    *,
    ids: int,
    rate: float,
    limit: float | None,
    latency_ms: float = 20.0,
    concurrency: int = 16,
    timeout: float = 600.0,
    seed: int = 0,
) -> RunReport:
    """Resign ``ids`` generated IDs through :func:`run_job` at ``rate`` against a fresh emulator.

    The input and the ledger go to ``workdir`` and are deleted afterwards. The run stops by
    itself after ``timeout`` seconds (``finished`` is then false).
    """
    source = write_ids(workdir / f"bench-{seed}.ids", ids, seed=seed)
    state = workdir / f"bench-{seed}.state"
    probe = Probe(limit=limit, latency_ms=latency_ms)
    try:
        with probe.serving() as server:
            args = ClientArgs(server.url, str(source), str(state), rate, concurrency, timeout)
            # No crash point or credentials of the caller's reach the child.
            env = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE_ENV)}
            # Times count from the spawn, as an operator's would: the interpreter's start and
            # the imports are part of the time to the first request.
            spawned = time.time()
            child = subprocess.run(  # noqa: S603 - this interpreter, our module, our arguments
                args.argv(),
                capture_output=True,
                stdin=subprocess.DEVNULL,
                env=env,
                timeout=timeout + 60,
                check=False,
            )
            if child.returncode != 0:
                tail = child.stderr.decode(errors="replace")[-2000:]
                raise RuntimeError(f"the measured client failed ({child.returncode}):\n{tail}")
            result = ClientResult.parse(child.stdout.splitlines()[-1])
    finally:
        for leftover in (source, *workdir.glob(f"{state.name}*")):
            leftover.unlink(missing_ok=True)
    return summarize(
        probe,
        ids=ids,
        rate=rate,
        started=spawned,
        ended=result.ended,
        finished=result.finished,
        paced=result.paced,
    )
