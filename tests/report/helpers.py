"""Helpers for the report tests: ledgers built by hand over real inputs."""

from __future__ import annotations

from pathlib import Path

from bulkresign.batching import Ingest
from bulkresign.binding import input_options  # the manifest's encoding; report.py inverts it
from bulkresign.digest import hash_file
from bulkresign.inputspec import InputSpec
from bulkresign.ledger import IdOutcome, Ledger, Manifest
from bulkresign.models import BatchState


def hex_id(i: int) -> str:
    """A valid user_id that the emulator does not know."""
    return f"{i:024x}"


#: 11 lines, batch size 3: batches [0 1 2] [3 4 5] [6]; line 3 junk, 4 blank, 6 a duplicate
#: of line 1, 10 a comment.
LINES = [
    hex_id(0),
    hex_id(1),
    "junk",
    "",
    hex_id(2),
    hex_id(0),
    hex_id(3),
    hex_id(4),
    hex_id(5),
    "# a comment",
    hex_id(6),
]


def make_ledger(
    state: Path,
    spec: InputSpec,
    *,
    exclude: frozenset[str] = frozenset(),
    record_hash: bool = True,
    ingest_done: bool = True,
    batches: int | None = None,
    stdin: bool = False,
    host: str = "http://127.0.0.1:9",
    userpool: str = "pool",
) -> Ledger:
    """A ledger bound to ``spec`` holding the input's first ``batches`` batches (all by default)
    as PENDING, with the ingest counts recorded when ``ingest_done``; ``stdin``: as if the run
    had read the input from standard input."""
    path = Path(spec.path)
    manifest = Manifest(
        input_path="-" if stdin else str(path),
        input_sha256=hash_file(path) if record_hash and not stdin else None,
        id_type=str(spec.id_type),
        endpoint="public-account",
        host=host,
        userpool_id=userpool,
        batch_size=spec.batch_size,
        input_options=input_options(spec),
        tool_version="0.1.0",
        pseudonym_key="ab" * 16,
    )
    ledger = Ledger.open(state, manifest)
    ingest = Ingest(spec, exclude=exclude)
    with ledger.transaction():
        for batch in ingest.batches():
            if batches is None or batch.seq < batches:
                ledger.add_batch(batch)
        if ingest_done:
            ledger.set_meta_json("ingest", ingest.stats.as_dict())
    return ledger


def resign_ok(
    ledger: Ledger, seq: int, request_id: str, ids: tuple[str, ...] | None = None
) -> None:
    """Record one successful resign call of ``ids`` (default: the whole batch)."""
    record = ledger.batch(seq)
    assert record is not None
    sent = ids if ids is not None else record.batch.ids
    with ledger.transaction():
        attempt = ledger.begin_attempt(seq, sent)
        ledger.finish_attempt(seq, attempt, "ok", status_code=200, request_id=request_id)
        if ids is None:
            ledger.set_state(seq, BatchState.DONE)


def settle(ledger: Ledger, seq: int, state: BatchState, *outcomes: IdOutcome) -> None:
    """Record per-ID outcomes of batch ``seq`` and move it to ``state``."""
    with ledger.transaction():
        ledger.record_ids(seq, outcomes)
        ledger.set_state(seq, state)
