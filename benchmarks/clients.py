"""The clients the ceiling and checkpoint benchmarks compare, each run in this process.

* :func:`run_bulkresign` — :func:`bulkresign.job.run_job`, the whole run: ingest, ledger, pacing,
  and (``records=True``) the event log and the audit journal, wired as `bulkresign run` does.
* :func:`run_sdk` — the naive baseline a user would write without bulkresign: the vendor's
  ``authing`` SDK called from 16 threads over the IDs cut into 50s. No record of what was sent,
  no dedup, no pacing; a crash leaves nobody knowing who was resigned. The SDK opens a new
  connection per call (``requests.request`` without a session).
* :func:`run_bare_aiohttp` — no tool at all: 16 keep-alive connections posting the same bodies.
  It shows what the HTTP calls alone cost on this machine, the floor under any client.

The emulator runs in another process, so this process's CPU time (all threads) is the client's.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import anyio
import orjson
from authing import ManagementClient

from benchmarks.common import cpu_seconds
from bulkresign.bench import demo_credentials
from bulkresign.cli.records import Records
from bulkresign.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, DEMO_USERPOOL_ID
from bulkresign.inputspec import Format, InputSpec
from bulkresign.job import JobConfig, run_job
from bulkresign.logs import reset_logging
from bulkresign.models import MAX_BATCH

__all__ = ["THREADS", "ClientRun", "run_bare_aiohttp", "run_bulkresign", "run_sdk"]

#: Connections (bulkresign's workers, the SDK's threads, aiohttp's pool).
THREADS = 16
_RESIGN = "/api/v3/resign-public-account-batch"


@dataclass(frozen=True, slots=True)
class ClientRun:
    """One client's run over one input."""

    requests: int
    failed: int
    """Calls that did not answer statusCode 200 (or raised)."""
    wall: float
    cpu: float
    """CPU seconds of this process (all threads) during the run."""
    finished: bool
    loop_cpu: float
    """Of ``cpu``, the calling thread's: the event loop's, for the asyncio clients."""

    @property
    def per_second(self) -> float:
        """Requests per second of wall time."""
        return self.requests / self.wall

    @property
    def cpu_per_1000(self) -> float:
        """CPU seconds per 1,000 requests."""
        return 1000 * self.cpu / self.requests if self.requests else 0.0

    @property
    def loop_cpu_per_1000(self) -> float:
        """The calling thread's CPU seconds per 1,000 requests."""
        return 1000 * self.loop_cpu / self.requests if self.requests else 0.0


def _timed(fn: Callable[[], tuple[int, int, bool]]) -> ClientRun:
    cpu, own, started = cpu_seconds(), time.thread_time(), time.perf_counter()
    requests, failed, finished = fn()
    wall, own = time.perf_counter() - started, time.thread_time() - own
    return ClientRun(requests, failed, wall, cpu_seconds() - cpu, finished, own)


def run_bulkresign(
    host: str,
    source: Path,
    state: Path,
    *,
    timeout: float,
    rate: float = 1e6,
    concurrency: int = THREADS,
    durable: bool = True,
    records: bool = True,
) -> ClientRun:
    """:func:`run_job` over ``source`` with a fresh ledger at ``state``.

    With ``records`` the run also writes ``STATE.log`` and ``STATE.journal`` through
    :class:`bulkresign.cli.records.Records`, as the CLI does: a user's run pays for them too.
    """
    cfg = JobConfig(
        spec=InputSpec(str(source), format=Format.LINES),
        host=host,
        credentials=demo_credentials(),
        state=state,
        rate=rate,
        concurrency=concurrency,
        signals=False,
        durable=durable,
    )

    kept = (
        Records(cfg, argparse.Namespace(log=None, journal=None, reason="benchmark", log_ids=False))
        if records
        else None
    )

    async def main() -> tuple[int, int, bool]:
        with anyio.move_on_after(timeout):
            if kept is None:
                outcome = await run_job(cfg)
            else:
                outcome = await run_job(cfg, events=kept.events, stamp=kept.stamp)
            assert outcome is not None
            if kept is not None:
                kept.close(outcome)
            s = outcome.stats
            return s.requests, s.requests - s.batches_done, outcome.result.finished
        return 0, 0, False

    try:
        return _timed(lambda: anyio.run(main))
    finally:
        reset_logging()


def _batches(source: Path) -> list[list[str]]:
    ids = source.read_text().split()
    return [ids[i : i + MAX_BATCH] for i in range(0, len(ids), MAX_BATCH)]


def run_sdk(host: str, source: Path, *, timeout: float) -> ClientRun:
    """Resign every line of ``source`` through the SDK from :data:`THREADS` threads."""
    local = threading.local()
    lock = threading.Lock()
    failed = 0

    def resign(batch: list[str]) -> None:
        nonlocal failed
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = ManagementClient(
                DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, host=host
            )
        try:
            ok = client.resign_public_account_batch(batch).get("statusCode") == 200
        except Exception:  # the SDK raises whatever requests raises; a failed call is a figure
            ok = False
        if not ok:
            with lock:
                failed += 1

    def go() -> tuple[int, int, bool]:
        batches = _batches(source)
        pool = ThreadPoolExecutor(THREADS, thread_name_prefix="sdk")
        _, pending = wait([pool.submit(resign, b) for b in batches], timeout=timeout)
        for f in pending:
            f.cancel()
        pool.shutdown(wait=True)
        return len(batches), failed, not pending

    return _timed(go)


def run_bare_aiohttp(
    host: str, source: Path, *, timeout: float, rate: float | None = None
) -> ClientRun:
    """Post every 50 IDs of ``source`` over :data:`THREADS` keep-alive connections.

    With ``rate``, each send waits for the next slot of a plain fixed-interval schedule: the CPU
    floor of a paced client, with no ledger, no ingest and no classification.
    """

    async def main() -> tuple[int, int, bool]:
        bodies = [orjson.dumps({"userIds": b}) for b in _batches(source)]
        failed = 0
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=THREADS)) as http:
            login = {"accessKeyId": DEMO_ACCESS_KEY_ID, "accessKeySecret": DEMO_ACCESS_KEY_SECRET}
            async with http.post(f"{host}/api/v3/get-management-token", json=login) as r:
                token = (await r.json())["data"]["access_token"]
            headers = {
                "authorization": f"Bearer {token}",
                "x-authing-userpool-id": DEMO_USERPOOL_ID,
                "content-type": "application/json",
            }
            todo = iter(bodies)
            interval = 1 / rate if rate else 0.0
            next_slot = time.monotonic()

            async def worker() -> None:
                nonlocal failed, next_slot
                for body in todo:
                    if interval:
                        slot = max(next_slot, time.monotonic())
                        next_slot = slot + interval
                        await anyio.sleep(max(0.0, slot - time.monotonic()))
                    async with http.post(f"{host}{_RESIGN}", data=body, headers=headers) as r:
                        failed += orjson.loads(await r.read()).get("statusCode") != 200

            with anyio.move_on_after(timeout) as scope:
                async with anyio.create_task_group() as tg:
                    for _ in range(THREADS):
                        tg.start_soon(worker)
        return len(bodies), failed, not scope.cancelled_caught

    return _timed(lambda: anyio.run(main))
