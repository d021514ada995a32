"""The front half of the pipeline: file → parse → validate → dedup → batches of at most 50.

:class:`Ingest` streams: the first batch comes out after the first block (4 MiB) is read, and
memory stays flat apart from the dedup table (under 40 bytes per unique ID). It is exactly
deterministic: the same bytes and :class:`InputSpec` give the same batches, whatever the block
size, so a resumed run re-reads the input from the start, rebuilds the table, and finds every
batch the ledger already holds unchanged. A batch is ``batch_size`` consecutive accepted IDs;
only the last may be shorter.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Generator, Iterator

from bulkresign.chunk import Chunk
from bulkresign.dedup import KeyTable
from bulkresign.digest import FileStamp, Prefix
from bulkresign.errors import ConfigError
from bulkresign.formats import pick_format, refuse_header_line
from bulkresign.idkeys import match_keys
from bulkresign.inputspec import Format, InputSpec
from bulkresign.models import Batch
from bulkresign.scan import Scanner
from bulkresign.source import BLOCK_SIZE, ByteStream, InputReader, check_readable
from bulkresign.tally import IngestStats, LineKind, LineRow, Reject, Tally
from bulkresign.validate import RejectReason, normalizer

__all__ = ["Ingest", "InputSpec"]


class Ingest:
    """One pass over one input, as batches (:meth:`batches`), lines (:meth:`rows`) or counts.

    Args:
        spec: the input and its options.
        exclude: normalized IDs never to batch; their lines count as ``excluded``.
        on_reject: called with every rejected line, in order (``plan --rejects``).
        block_size: bytes read per step (tests shrink it to cross every boundary).
        fast: allow the vectorized ``user_id`` path (tests compare it with the per-line path).
        threaded: parse the next blocks in a helper thread while the dedup table works.
        stdin: read this instead of opening the path (``-``, or a pipe read ahead).
        stamp: what the input file must bear throughout the read (:mod:`bulkresign.digest`).
        expect_prefix: what an earlier run read of this one-time input (stdin, a pipe).

    Raises:
        InputError: the path is missing, a directory or unreadable (checked here), or the input
            turns out unusable while it is read.
        ConfigError: an ``exclude`` value is not a valid ID of the type.
    """

    def __init__(
        self,
        spec: InputSpec,
        *,
        exclude: Collection[str] = (),
        on_reject: Callable[[Reject], None] | None = None,
        block_size: int = BLOCK_SIZE,
        fast: bool = True,
        threaded: bool = True,
        stdin: ByteStream | None = None,
        stamp: FileStamp | None = None,
        expect_prefix: Prefix | None = None,
    ) -> None:
        check_readable(spec.path)
        self.spec = spec
        self._normalize = normalizer(spec.id_type, case_sensitive_email=spec.case_sensitive_email)
        self._exclude = self._exclude_table(exclude)
        self._on_reject = on_reject
        self._block_size = block_size
        self._fast = fast
        self._threaded = threaded
        self._stdin = stdin
        self._stamp = stamp
        self._expect_prefix = expect_prefix
        self._tally = Tally("<stdin>" if spec.path == "-" else spec.path, spec.id_type)
        self._reader: InputReader | None = None
        self._started = False

    def _exclude_table(self, values: Collection[str]) -> KeyTable | None:
        if not values:
            return None
        ids: list[str] = []
        for value in values:
            normalized = self._normalize(value)
            if isinstance(normalized, RejectReason):
                raise ConfigError(f"excluded ID {value!r} is not a valid {self.spec.id_type}")
            ids.append(normalized)
        table = KeyTable()
        table.insert(match_keys(self.spec, ids))
        return table

    @property
    def stats(self) -> IngestStats:
        """The counts so far; final once a pass has read the whole input."""
        return self._tally.snapshot()

    @property
    def format(self) -> Format:
        """The format the input is read as (``auto`` until reading starts)."""
        return self._tally.format

    def input_digest(self) -> str:
        """SHA-256 of the raw input bytes read so far — of the whole input after a full pass."""
        if self._tally.done or self._reader is None:
            return self._tally.input_sha256
        return self._reader.digest()

    def read_so_far(self) -> Prefix | None:
        """The raw bytes read so far (``None`` before the input is opened)."""
        return None if self._reader is None else self._reader.prefix

    def batches(self) -> Generator[Batch, None, None]:
        """The accepted IDs, ``batch_size`` at a time, numbered from 0."""
        size = self.spec.batch_size
        ids: list[str] = []
        lines: list[int] = []
        seq = 0
        for chunk in self._chunks(detailed=False, derive_batches=False):
            if chunk.accepted:
                ids.extend(chunk.accepted.decode().split("\n")[:-1])
                lines.extend(chunk.accepted_lines.tolist())
            full = len(ids) - len(ids) % size
            for at in range(0, full, size):
                yield Batch(seq, tuple(ids[at : at + size]), tuple(lines[at : at + size]))
                seq += 1
                self._count_batch()
            del ids[:full], lines[:full]
        if ids:
            yield Batch(seq, tuple(ids), tuple(lines))
            self._count_batch()

    def drain(self) -> IngestStats:
        """Read the whole input without building batches; return the final counts."""
        for _ in self._chunks(detailed=False, derive_batches=True):
            pass
        return self.stats

    def rows(self) -> Iterator[LineRow]:
        """One :class:`LineRow` per input line, in order (the per-line path: slower)."""
        size = self.spec.batch_size
        accepted = 0
        for chunk in self._chunks(detailed=True, derive_batches=True):
            assert chunk.detail is not None
            for line, raw, value, kind, reason in chunk.detail:
                if kind is LineKind.ACCEPTED:
                    batch, position = divmod(accepted, size)
                    accepted += 1
                    yield LineRow(line, raw, value, kind, None, batch, position)
                else:
                    yield LineRow(line, raw, value, kind, reason)

    def _count_batch(self) -> None:
        with self._tally.lock:
            self._tally.batches += 1

    def _chunks(self, *, detailed: bool, derive_batches: bool) -> Iterator[Chunk]:
        """Run the pass; ``derive_batches`` counts batches from accepted IDs instead of yields."""
        if self._started:
            raise RuntimeError("an Ingest reads its input once; make a new one to read it again")
        self._started = True
        tally = self._tally
        with InputReader(
            self.spec.path,
            block_size=self._block_size,
            stdin=self._stdin,
            stamp=self._stamp,
            expect_prefix=self._expect_prefix,
        ) as reader:
            self._reader = reader
            fmt, note = pick_format(self.spec, reader.name, reader.sample)
            refuse_header_line(self.spec, fmt, reader.name, reader.sample)
            if reader.gzip:
                note = f"gzip-compressed, {note}"
            with tally.lock:
                tally.format, tally.format_note = fmt, note
            seen = KeyTable()
            size = reader.size
            scanner = Scanner(
                self.spec,
                fmt,
                self._normalize,
                seen=seen,
                exclude=self._exclude,
                detailed=detailed,
                fast=self._fast,
                threaded=self._threaded,
            )
            for chunk in scanner.chunks(reader):
                self._apply(chunk, reader, scanner.note or None, derive_batches)
                if size and chunk.consumed:  # lets the table grow once to about the final size
                    seen.expect(tally.accepted * size // chunk.consumed)
                if self._on_reject is not None:
                    for reject in chunk.rejects:
                        self._on_reject(reject)
                yield chunk
            with tally.lock:
                tally.input_sha256 = reader.digest()
                tally.bytes_read = reader.bytes_read
                tally.dedup_bytes = seen.nbytes
                tally.done = True
                if derive_batches:
                    tally.batches = math.ceil(tally.accepted / self.spec.batch_size)

    def _apply(self, chunk: Chunk, reader: InputReader, note: str | None, derive: bool) -> None:
        tally = self._tally
        with tally.lock:
            tally.lines += chunk.lines
            tally.accepted += len(chunk.accepted_lines)
            tally.duplicates += chunk.duplicates
            tally.excluded += chunk.excluded
            for reason, n in chunk.skipped.items():
                tally.skip(reason, n)
            for reject in chunk.rejects:
                tally.reject(reject.line, reject.reason)
            tally.accepted_hash.update(chunk.accepted)
            tally.bytes_read = reader.bytes_read
            if derive:
                tally.batches = tally.accepted // self.spec.batch_size
            if note and not tally.format_note.endswith(note):
                tally.format_note = f"{tally.format_note}; {note}"
