"""Properties over any bytes: every line accounted for, sound batches, only InputError."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulkresign.batching import Ingest
from bulkresign.errors import InputError
from bulkresign.inputspec import Format, InputSpec
from bulkresign.models import IdType
from bulkresign.tally import LineKind
from bulkresign.validate import normalizer
from tests.ingest.helpers import accounted, object_ids

POOL = object_ids(6, seed=9)
TOKENS = [
    *(i.encode() for i in POOL),
    POOL[0].upper().encode(),
    b"a@b.co",
    b"A@B.CO",
    b"+86 138 0000 0000",
    b"idp:user",
    b"\n",
    b"\n",
    b"\r\n",
    b"\r",
    b" ",
    b"\t",
    b"#",
    b",",
    b'"',
    b"{",
    b'{"userId": "' + POOL[1].encode() + b'"}',
    b"\x00",
    b"\xff",
    b"\xef\xbb\xbf",
    "\u2028".encode(),
    b"\x0b",
]
FORMATS = [Format.AUTO, Format.LINES, Format.CSV, Format.JSONL]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def text_like() -> st.SearchStrategy[bytes]:
    return st.lists(st.sampled_from(TOKENS), max_size=60).map(b"".join)


def id_lines_like() -> st.SearchStrategy[bytes]:
    """Near-text where whole ID lines, the vectorized path's case, come often."""
    lines = [*(i.encode() + b"\n" for i in POOL), POOL[0].upper().encode() + b"\r\n"]
    return st.lists(st.sampled_from(TOKENS) | st.sampled_from(lines), max_size=60).map(b"".join)


def physical_lines(data: bytes) -> int:
    """Lines as an editor counts them: newlines, plus an unterminated last line."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)


def check(
    data: bytes, fmt: Format, id_type: IdType, size: int, block: int, *, packed: bool = False
) -> None:
    """Run every invariant on one input; an InputError is the only acceptable failure."""
    raw = gzip.compress(data) if packed else data
    spec = InputSpec("-", id_type=id_type, format=fmt, batch_size=size, max_line_bytes=40)
    column = {"column": 1} if fmt is Format.CSV else {}
    if column:
        spec = InputSpec("-", id_type, fmt, column=1, batch_size=size, max_line_bytes=40)
    reader = Ingest(spec, stdin=io.BytesIO(raw), block_size=block)
    try:
        got = list(reader.batches())
    except InputError:
        return
    stats = reader.stats
    assert accounted(stats)
    assert stats.lines == physical_lines(data)
    ids = [i for b in got for i in b.ids]
    assert all(1 <= len(b.ids) <= size for b in got)
    assert [b.seq for b in got] == list(range(len(got)))
    assert len(ids) == len(set(ids)) == stats.accepted
    lines = [n for b in got for n in b.lines]
    assert lines == sorted(lines)  # the order of first occurrence
    normalize = normalizer(id_type)
    assert all(normalize(i) == i for i in ids)
    rows = list(Ingest(spec, stdin=io.BytesIO(raw), block_size=7, fast=False).rows())
    assert [r.id for r in rows if r.kind is LineKind.ACCEPTED] == ids
    assert len(rows) == stats.lines


class TestAnyBytes:
    @SETTINGS
    @given(
        data=st.binary(max_size=400),
        fmt=st.sampled_from(FORMATS),
        id_type=st.sampled_from(list(IdType)),
        size=st.integers(1, 50),
        block=st.integers(1, 64),
    )
    def test_binary(self, data: bytes, fmt: Format, id_type: IdType, size: int, block: int) -> None:
        """Arbitrary bytes: counts add up and batches are sound, or a clean InputError."""
        check(data, fmt, id_type, size, block)

    @SETTINGS
    @given(
        data=text_like(),
        fmt=st.sampled_from(FORMATS),
        id_type=st.sampled_from([IdType.USER_ID, IdType.EMAIL, IdType.USERNAME]),
        size=st.integers(1, 4),
        block=st.integers(1, 64),
    )
    def test_text_like(
        self, data: bytes, fmt: Format, id_type: IdType, size: int, block: int
    ) -> None:
        """Near-text full of hostile pieces: the same invariants, exercised on real IDs."""
        check(data, fmt, id_type, size, block)

    @settings(max_examples=40, deadline=None)
    @given(data=text_like(), block=st.integers(1, 64))
    def test_gzip(self, data: bytes, block: int) -> None:
        """Compressed, the same bytes give the same invariants."""
        check(data, Format.LINES, IdType.USER_ID, 3, block, packed=True)

    @settings(max_examples=100, deadline=None)
    @given(
        data=id_lines_like(),
        id_type=st.sampled_from([IdType.USER_ID, IdType.EMAIL, IdType.PHONE]),
        limit=st.integers(1, 48),
        block=st.one_of(st.integers(1, 64), st.just(1 << 20)),
    )
    def test_fast_and_per_line_paths_agree(
        self, data: bytes, id_type: IdType, limit: int, block: int
    ) -> None:
        """The block-at-a-time paths and the per-line path agree, at any limit and block size."""

        def stats(fast: bool) -> object:
            spec = InputSpec("-", id_type, Format.LINES, max_line_bytes=limit)
            try:
                return Ingest(spec, stdin=io.BytesIO(data), fast=fast, block_size=block).drain()
            except InputError as exc:
                return str(exc)

        assert stats(True) == stats(False)


def test_files_too(tmp_path: Path) -> None:
    """A file path behaves as stdin does for the same bytes."""
    data = b"\xef\xbb\xbf" + b"\r\n".join(i.encode() for i in POOL) + b"\r\n"
    path = tmp_path / "ids.txt"
    path.write_bytes(data)
    from_file = Ingest(InputSpec(str(path))).drain()
    from_stdin = Ingest(InputSpec("-"), stdin=io.BytesIO(data)).drain()
    assert (from_file.sha256, from_file.lines) == (from_stdin.sha256, from_stdin.lines)
