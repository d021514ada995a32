"""The measured client of :func:`~bulkresign.bench.run.measure_run`, in a process of its own.

``python -m bulkresign.bench.client ARGS_JSON`` runs :func:`~bulkresign.job.run_job` with the
emulator's demo key and prints one JSON line: when it started and ended, whether it finished, and
the limiter's paced rate sampled over time. The probe emulator stays in the parent, alone with
its interpreter lock: sharing one with the client would delay its arrival stamps by whatever the
client holds the lock for (a dedup table's growth, a collection), a jitter a real server never
sees from us, and the busiest-window check would measure it.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anyio
import orjson

from bulkresign.config import Credentials, Secret
from bulkresign.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET
from bulkresign.inputspec import Format, InputSpec
from bulkresign.job import JobConfig, run_job
from bulkresign.limiter import LimiterStats
from bulkresign.models import MAX_BATCH
from bulkresign.stats import RunStats

__all__ = ["ClientArgs", "ClientResult", "demo_credentials", "main", "pace_sampler", "run_client"]

#: How often the client's paced rate is sampled for the timeline, in seconds.
SAMPLE_EVERY = 0.1


@dataclass(frozen=True, slots=True)
class ClientArgs:
    """What the child runs: one input against one emulator."""

    host: str
    source: str
    state: str
    rate: float
    concurrency: int
    timeout: float

    def argv(self) -> list[str]:
        """The command line that runs this client."""
        return [sys.executable, "-m", "bulkresign.bench.client", json.dumps(asdict(self))]


@dataclass(frozen=True, slots=True)
class ClientResult:
    """What the child reports; times are wall-clock seconds, as the emulator's clock is."""

    started: float
    ended: float
    finished: bool
    paced: list[tuple[float, float]]

    @classmethod
    def parse(cls, line: bytes) -> ClientResult:
        """Read the child's JSON line."""
        raw = orjson.loads(line)
        paced = [(float(t), float(r)) for t, r in raw["paced"]]
        return cls(float(raw["started"]), float(raw["ended"]), bool(raw["finished"]), paced)


def demo_credentials() -> Credentials:
    """The emulator's public demo access key."""
    return Credentials(DEMO_ACCESS_KEY_ID, Secret(DEMO_ACCESS_KEY_SECRET))


def pace_sampler(
    into: list[tuple[float, float]], clock: Callable[[], float]
) -> Callable[[RunStats, Callable[[], LimiterStats]], Coroutine[Any, Any, None]]:
    """A ``watch`` for :func:`run_job` that samples the limiter's rate on ``clock``."""

    async def watch(_: RunStats, limiter: Callable[[], LimiterStats]) -> None:
        while True:
            into.append((clock(), limiter().current_rate))
            await anyio.sleep(SAMPLE_EVERY)

    return watch


def run_client(args: ClientArgs) -> ClientResult:
    """Run the job in this process and return what happened."""
    cfg = JobConfig(
        spec=InputSpec(args.source, format=Format.LINES, batch_size=MAX_BATCH),
        host=args.host,
        credentials=demo_credentials(),
        state=Path(args.state),
        rate=args.rate,
        concurrency=args.concurrency,
        signals=False,
    )
    paced: list[tuple[float, float]] = []

    async def go() -> bool:
        with anyio.move_on_after(args.timeout):
            outcome = await run_job(cfg, watch=pace_sampler(paced, time.time))
            return outcome is not None and outcome.result.finished
        return False

    started = time.time()
    finished = anyio.run(go)
    return ClientResult(started, time.time(), finished, paced)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the child: run, then print the result as one JSON line."""
    (raw,) = sys.argv[1:] if argv is None else argv
    result = run_client(ClientArgs(**json.loads(raw)))
    sys.stdout.buffer.write(orjson.dumps(asdict(result)) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
