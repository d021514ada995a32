"""What binds a run to its input across runs: the manifest's input options, the input's hash,
and the note an input error leaves so that a fixed input may take the ledger over.

The hash is recorded beside a fresh run's first requests. A resume recomputes it before anything
else; an input the ledger is not bound to by it — a fixed one, a pipe, one whose first run
stopped before the hash was recorded — is bound only once it has replayed every recorded batch
(:func:`bulkresign.pipeline.run_pipeline`, ``replay_first``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import anyio
import anyio.to_thread
import orjson

from bulkresign.chain import JournalAnchor
from bulkresign.checkpoint import Checkpointer
from bulkresign.digest import FileStamp, hash_file
from bulkresign.errors import ConfigError, InputError, LedgerError
from bulkresign.inputspec import InputSpec
from bulkresign.journaled import journaled, unsettled
from bulkresign.ledger import Ledger
from bulkresign.models import BatchState
from bulkresign.records import handed_to
from bulkresign.sqlfile import RunLock, is_blank

__all__ = [
    "hand_off",
    "ingest_done",
    "input_options",
    "rebind_input",
    "record_exclude",
    "record_hash",
    "record_plan",
    "recorded_plan",
    "replaced_input",
]


def record_exclude(ledger: Ledger, exclude: frozenset[str]) -> None:
    """Keep the protected IDs, so that ``report`` can re-derive the run's lines alone."""
    with ledger.transaction():
        ledger.set_meta_json("exclude", sorted(exclude))


@contextlib.contextmanager
def hand_off(state: Path, *, abandon: bool, to: str) -> Iterator[None]:
    """Export a run's unprocessed rows for another run, inside the block, only while this one can
    never send them: it has finished, or it is abandoned (``abandon``) for good.

    The run's lock is held throughout, so no resume can start meanwhile; the abandonment is
    recorded before anything is written (a crash then leaves it closed, the safe side) and taken
    back if the export fails.
    """
    try:
        lock = RunLock(state)
    except LedgerError:
        raise ConfigError(
            f"{state}: a run is using this state file, and will send its unprocessed rows "
            "itself; report them once it has ended"
        ) from None
    try:
        ledger = Ledger.open(state)
        try:
            meta = ledger.meta()
            finished = "ingest" in meta and ledger.open_count() == 0
            if not finished and not abandon:
                raise ConfigError(
                    f"{state}: this run can be resumed, and a resume sends its unprocessed rows "
                    "itself; resume it (the same `bulkresign run` command), or pass "
                    "--abandon-run to hand them to another run and close this one for good"
                )
            closing = not finished and handed_to(meta) is None
            counts = ledger.state_counts()
            doubt = counts.get(BatchState.SENDING, 0) + counts.get(BatchState.IN_DOUBT, 0)
            anchor = JournalAnchor.from_meta(meta)
            journal = Path(anchor.path) if anchor is not None else Path(f"{state}.journal")
            if closing and unsettled(ledger, journaled(ledger, journal, anchor)):
                # The ledger lost commits (bulkresign.journaled): rows it calls unprocessed may
                # have been sent; only this run's resume reads them back.
                raise ConfigError(
                    f"{state}: its audit journal records calls this state file does not hold as "
                    "sent (it lost commits: a -wal deleted, an older copy put back); resume the "
                    "run first (the same `bulkresign run` command): it reads them back"
                )
            if closing and doubt:
                # Their calls may have been applied: only this run's read-back can tell, and a
                # closed run never reads back, so they would stay in doubt for good.
                raise ConfigError(
                    f"{state}: {doubt:,} batches of this run are in doubt (their calls may have "
                    "been applied); only this run settles them: resume it (the same `bulkresign "
                    "run` command: it reads them back first) and stop it with Ctrl-C, which "
                    "lets the calls in flight finish, then hand off what is left"
                )
            if closing:
                with ledger.transaction():
                    ledger.set_meta_json("abandoned", {"to": to, "at": time.time()})
            try:
                yield
            except BaseException:
                if closing:
                    with ledger.transaction():
                        ledger.set_meta("abandoned", "")
                raise
        finally:
            ledger.close()
    finally:
        lock.release()


def record_plan(ledger: Ledger, digest: str) -> None:
    """Keep the reviewed plan's hash the run was guarded by (``--plan-sha256``)."""
    with ledger.transaction():
        ledger.set_meta("plan_sha256", digest.lower())


def recorded_plan(state: Path) -> str | None:
    """The reviewed plan's hash an earlier run on ``state`` was guarded by, if any."""
    if not state.is_file() or is_blank(state):  # a start killed as it made the file: no plan
        return None
    ledger = Ledger.open(state)
    try:
        return ledger.meta().get("plan_sha256") or None
    finally:
        ledger.close()


async def record_hash(ckpt: Checkpointer, path: Path, stamp: FileStamp) -> None:
    """Hash the input beside the first requests and bind the ledger to it.

    A file that changes meanwhile fails the hash here, and the ingest at its next block.
    """
    try:
        digest = await anyio.to_thread.run_sync(hash_file, path, stamp)
    except InputError:
        return  # the ingest stops the run on the same change, naming the line it reached
    await ckpt.write(lambda led: led.set_meta("input_sha256", digest))


def ingest_done(led: Ledger, *, stats: dict[str, object]) -> None:
    """The input was read to its end: its counts are final, and no input error stands."""
    led.set_meta_json("ingest", stats)
    led.set_meta("input_error", "")


def replaced_input(meta: Mapping[str, str], input_hash: str | None) -> str | None:
    """The last run's input error, if the input has been changed (fixed) since."""
    error = meta.get("input_error")
    stored = meta.get("input_sha256")
    if error and input_hash is not None and stored and stored != input_hash:
        return error
    return None


def rebind_input(ledger: Ledger, *, input_hash: str) -> None:
    """Bind the ledger to the input, once it has replayed every recorded batch."""
    ledger.set_meta("input_sha256", input_hash)
    ledger.set_meta("input_error", "")


def input_options(spec: InputSpec, exclude: frozenset[str] = frozenset()) -> str:
    """The input options that change what the batches are, as canonical JSON.

    The protected IDs count: a resume with another ``--exclude`` would batch differently.
    """
    binding = {k: str(v) for k, v in dataclasses.asdict(spec).items() if k != "path"}
    digest = hashlib.sha256("\n".join(sorted(exclude)).encode()).hexdigest()
    binding["exclude_sha256"] = digest if exclude else ""
    return orjson.dumps(binding, option=orjson.OPT_SORT_KEYS).decode()
