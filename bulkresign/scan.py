"""One pass over an opened input: lines → fields → normalized IDs → first occurrences, by chunks.

A :class:`Chunk` covers consecutive lines and says what became of each: the IDs accepted there
(in order, with their line numbers), and how many lines were duplicates, excluded, skipped or
rejected. Plain ``user_id`` lines take the vectorized path of :mod:`bulkresign.fastpath`; every
other line takes the exact per-line path of :mod:`bulkresign.formats` and
:mod:`bulkresign.validate`. Deduplication is :class:`~bulkresign.dedup.KeyTable`, keyed by the
ObjectId's 12 bytes or by a 128-bit BLAKE2b digest of the normalized value.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice

import numpy as np
import numpy.typing as npt

from bulkresign.chunk import Chunk, Pending, line_kind, preview
from bulkresign.csvrecords import CsvParser
from bulkresign.dedup import KeyTable
from bulkresign.errors import InputError
from bulkresign.fastpath import OBJECT_ID_LEN, split_hex_block
from bulkresign.formats import Item, JsonlParser, classify_plain, plain_items
from bulkresign.idkeys import id_keys, match_keys
from bulkresign.inputspec import Format, InputSpec
from bulkresign.lines import Lines, Piece, numbered
from bulkresign.models import IdType
from bulkresign.readahead import read_ahead
from bulkresign.source import InputReader
from bulkresign.tally import LineKind, Reject
from bulkresign.validate import (
    Normalizer,
    RejectReason,
    SkipReason,
    preview_text,
)

__all__ = ["CHUNK_LINES", "FIRST_CHUNK_LINES", "Scanner"]

#: Lines per chunk on the per-line path: enough to amortize one vectorized dedup call.
CHUNK_LINES = 1 << 16
#: Lines in the first chunk of a CSV or JSONL input; each next chunk doubles up to CHUNK_LINES.
FIRST_CHUNK_LINES = 1 << 11


class Scanner:
    """Classify and deduplicate the lines of an opened :class:`InputReader`.

    Args:
        spec: the input options.
        fmt: the format picked for this input.
        normalize: the ID type's normalizer.
        seen: the table of IDs accepted so far.
        exclude: IDs never to accept, or ``None``.
        detailed: also describe every line (:attr:`Chunk.detail`); takes the per-line path.
        fast: allow the vectorized path (tests turn it off to compare the two).
        threaded: parse and key the next blocks in a helper thread while the table works
            (on the vectorized path, where numpy releases the GIL).
    """

    def __init__(
        self,
        spec: InputSpec,
        fmt: Format,
        normalize: Normalizer,
        *,
        seen: KeyTable,
        exclude: KeyTable | None,
        detailed: bool = False,
        fast: bool = True,
        threaded: bool = True,
    ) -> None:
        self.spec = spec
        self.fmt = fmt
        self.limit = spec.line_limit(fmt)
        self.normalize = normalize
        self.seen = seen
        self.exclude = exclude
        self.detailed = detailed
        self.blockwise = fast and not detailed and fmt is Format.LINES
        # The numpy path takes 24-hex-digit lines without the length check; under a smaller limit
        # they are too_long (the limit counts a line without \n and one \r, as numpy does).
        self.hex = self.blockwise and spec.id_type is IdType.USER_ID and self.limit >= OBJECT_ID_LEN
        # Only the numpy path gains from a second thread: elsewhere both halves hold the GIL.
        self.threaded = threaded and self.hex
        self.parser: CsvParser | JsonlParser | None = None

    @property
    def note(self) -> str:
        """Which column or field the IDs were taken from, once known."""
        return self.parser.note if self.parser is not None else ""

    def chunks(self, reader: InputReader) -> Iterator[Chunk]:
        """Chunks covering every line of ``reader``, in order."""
        pending = self._pending(reader)
        if self.threaded:
            pending = read_ahead(pending)
        for item in pending:
            yield self._complete(item)

    def _pending(self, reader: InputReader) -> Iterator[Pending]:
        pieces = numbered(reader.pieces(self.limit))
        if self.blockwise:
            for piece in pieces:
                if isinstance(piece, Lines):
                    pending = self._hex_pending(piece) if self.hex else self._text_pending(piece)
                else:
                    pending = self._items_pending(list(plain_items(iter((piece,)), self.limit)))
                pending.chunk.consumed = reader.text_read
                yield pending
            return
        items = self._items(pieces)
        # Small at first, as the reader's blocks: the first batch early. Smaller still from a
        # pipe, whose writer may pause: a group waits until it is full (2,048 records held a
        # slow producer's first 60 until it went on).
        size = FIRST_CHUNK_LINES if reader.size is not None else self.spec.batch_size + 1
        while True:
            group: list[Item] = []
            try:
                for item in islice(items, size):
                    group.append(item)  # noqa: PERF402 - one by one: kept when the next fails
            except InputError:
                # The lines before a bad one are told first (a report's rows reach it), then it.
                if group:
                    yield self._items_pending(group)
                raise
            if not group:
                return
            pending = self._items_pending(group)
            pending.chunk.consumed = reader.text_read
            size = min(CHUNK_LINES, size * 2)
            yield pending

    def _items(self, pieces: Iterator[Piece]) -> Iterator[Item]:
        if self.fmt is Format.LINES:
            return plain_items(pieces, self.limit)
        if self.fmt is Format.JSONL:
            self.parser = JsonlParser(self.spec, self._name, self.limit)
        else:
            self.parser = CsvParser(self.spec, self.fmt, self._name, self.limit)
        return self.parser.items(pieces)

    @property
    def _name(self) -> str:
        return "<stdin>" if self.spec.path == "-" else self.spec.path

    def _field(self, item: Item, chunk: Chunk, ids: list[str], id_lines: list[int]) -> bool:
        """Route one line: its normalized ID to ``ids`` (True), or its fate to ``chunk``."""
        reason: RejectReason | SkipReason | None = item.reason
        if item.text is not None:
            value = self.normalize(item.text)
            if not isinstance(value, RejectReason):
                ids.append(value)
                id_lines.append(item.line)
                return True
            reason = value
        if isinstance(reason, SkipReason):
            chunk.skipped[reason] = chunk.skipped.get(reason, 0) + 1
        else:
            assert reason is not None
            chunk.rejects.append(Reject(item.line, reason, preview(item.raw)))
        if chunk.detail is not None:
            chunk.detail.append((item.line, preview(item.raw), None, line_kind(reason), reason))
        return False

    def _keyed(
        self,
        chunk: Chunk,
        lines: npt.NDArray[np.int64],
        ids: list[str] | npt.NDArray[np.uint8],
        keys: npt.NDArray[np.uint64],
    ) -> Pending:
        """Set aside excluded IDs and prepare the rest for the table."""
        live = np.arange(len(keys))
        if self.exclude is not None and len(keys):
            excluded = self.exclude.contains(keys)
            chunk.excluded = int(np.count_nonzero(excluded))
            live = np.flatnonzero(~excluded)
            keys = keys[live]
        batch = self.seen.prepare(keys) if len(keys) else None
        return Pending(chunk, lines, ids, live, batch)

    def _items_pending(self, items: list[Item]) -> Pending:
        chunk = Chunk(len(items), np.empty(0, np.int64), b"")
        ids: list[str] = []
        id_lines: list[int] = []
        slots: list[int] = []
        if self.detailed:
            chunk.detail = []
            for item in items:
                if self._field(item, chunk, ids, id_lines):
                    slots.append(len(chunk.detail))
                    chunk.detail.append(
                        (item.line, preview(item.raw), ids[-1], LineKind.ACCEPTED, None)
                    )
        else:
            for item in items:
                self._field(item, chunk, ids, id_lines)
        keys = match_keys(self.spec, ids)
        pending = self._keyed(chunk, np.array(id_lines, np.int64), ids, keys)
        pending.slots = slots
        return pending

    def _text_pending(self, piece: Lines) -> Pending:
        """Plain lines of any ID type, a block at a time when the block is clean UTF-8.

        The per-line path's checks in its order — comment, blank, length, NUL, UTF-8 — give the
        same answers here: a block with a NUL, bad UTF-8 or a line that may be too long takes
        the per-line path instead.
        """
        data = piece.data
        text = None
        if b"\0" not in data:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                pass
        lines = text.split("\n")[:-1] if text is not None else []
        if text is None or max(map(len, lines), default=0) * 4 > self.limit:
            return self._items_pending(list(plain_items(iter((piece,)), self.limit)))
        chunk = Chunk(len(lines), np.empty(0, np.int64), b"")
        ids: list[str] = []
        id_lines: list[int] = []
        skipped = chunk.skipped
        normalize = self.normalize
        for number, line in enumerate(lines, piece.first_line):
            value = line[:-1] if line.endswith("\r") else line
            head = value.lstrip(" \t")
            if not head or head[0] == "#":
                reason = SkipReason.COMMENT if head else SkipReason.BLANK
                skipped[reason] = skipped.get(reason, 0) + 1
                continue
            normalized = normalize(value)
            if isinstance(normalized, RejectReason):
                chunk.rejects.append(Reject(number, normalized, preview_text(value)))
            else:
                ids.append(normalized)
                id_lines.append(number)
        keys = match_keys(self.spec, ids)
        return self._keyed(chunk, np.array(id_lines, np.int64), ids, keys)

    def _hex_pending(self, piece: Lines) -> Pending:
        data = piece.data
        block = split_hex_block(data)
        chunk = Chunk(len(block.starts), np.empty(0, np.int64), b"")
        others = np.ones(len(block.starts), np.bool_)
        others[block.good] = False
        ids: list[str] = []
        id_lines: list[int] = []
        first = piece.first_line
        where = np.flatnonzero(others)
        for i, a, b in zip(
            where.tolist(), block.starts[where].tolist(), block.ends[where].tolist(), strict=True
        ):
            self._field(classify_plain(first + i, data[a:b], self.limit), chunk, ids, id_lines)
        index, keys, text = block.good, block.keys, block.text
        if ids:  # IDs that needed the per-line path (padded, say) join in line order
            extra = np.array(id_lines, np.int64) - first
            more_text = np.frombuffer("".join(ids).encode(), np.uint8).reshape(-1, OBJECT_ID_LEN)
            order = np.argsort(np.concatenate([index, extra]), kind="stable")
            index = np.concatenate([index, extra])[order]
            keys = np.concatenate([keys, id_keys(IdType.USER_ID, ids)])[order]
            text = np.concatenate([text, more_text])[order]
        return self._keyed(chunk, first + index.astype(np.int64), text, keys)

    def _complete(self, pending: Pending) -> Chunk:
        """Run a pending chunk's IDs through the table: each is new, a duplicate or excluded."""
        chunk = pending.chunk
        n = len(pending.lines)
        if not n:
            return chunk
        new = np.zeros(n, np.bool_)
        if pending.keys is not None:
            new[pending.live] = self.seen.add(pending.keys)
        acc = np.flatnonzero(new)
        chunk.duplicates = len(pending.live) - len(acc)
        chunk.accepted_lines = pending.lines[acc]
        if isinstance(pending.ids, list):
            chunk.accepted = "".join(pending.ids[i] + "\n" for i in acc.tolist()).encode()
        else:
            out = np.empty((len(acc), OBJECT_ID_LEN + 1), np.uint8)
            out[:, :OBJECT_ID_LEN] = np.take(pending.ids, acc, axis=0)
            out[:, OBJECT_ID_LEN] = ord("\n")
            chunk.accepted = out.tobytes()
        if chunk.detail is not None:
            excluded = np.ones(n, np.bool_)
            excluded[pending.live] = False
            for slot, is_new, is_excluded in zip(
                pending.slots, new.tolist(), excluded.tolist(), strict=True
            ):
                if not is_new:
                    line, raw, value, _, _ = chunk.detail[slot]
                    kind = LineKind.EXCLUDED if is_excluded else LineKind.DUPLICATE
                    chunk.detail[slot] = (line, raw, value, kind, None)
        return chunk
