"""Reading: blocks, line endings, BOM, bounded lines, gzip, stdin, and inputs that are not text."""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import tracemalloc
import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulkresign.errors import InputError
from bulkresign.held import HeldStream
from bulkresign.lines import Lines, LongLine
from bulkresign.scan import FIRST_CHUNK_LINES
from bulkresign.source import BLOCK_SIZE, FIRST_BLOCK, InputReader
from tests.ingest.helpers import Write, accounted, batches, drain, ingest, object_ids

IDS = object_ids(6)


def lines_of(path: Path, limit: int = 1024, block_size: int = 1 << 20) -> list[tuple[int, bytes]]:
    """(line number, raw line) for each line the reader cuts, long lines as their head."""
    out: list[tuple[int, bytes]] = []
    with InputReader(str(path), block_size=block_size) as reader:
        for piece in reader.pieces(limit):
            if isinstance(piece, LongLine):
                out.append((piece.line, piece.head))
            else:
                assert isinstance(piece, Lines)
                for i, line in enumerate(piece.data.split(b"\n")[:-1]):
                    out.append((piece.first_line + i, line))
    return out


class TestLineEndings:
    def test_splits_on_newline_only(self, write: Write) -> None:
        """\\x0b, \\x0c, \\x1c, \\x85 and \\u2028 stay inside their line (unlike str.splitlines)."""
        path = write("a\x0bb\nc\x1cd\ne\u2028f\ng\x85h\ni\x0cj\n")
        assert [n for n, _ in lines_of(path)] == [1, 2, 3, 4, 5]

    def test_last_line_without_newline_counts(self, write: Write) -> None:
        """A final line with no line ending is a line."""
        path = write(f"{IDS[0]}\n{IDS[1]}")
        stats = drain(path)
        assert (stats.lines, stats.accepted) == (2, 2)

    def test_crlf_is_one_line_ending(self, write: Write) -> None:
        """CRLF files give the same IDs as LF files."""
        crlf = write("\r\n".join(IDS) + "\r\n", "crlf.txt")
        lf = write("\n".join(IDS) + "\n", "lf.txt")
        assert drain(crlf).sha256 == drain(lf).sha256

    def test_only_one_trailing_cr_is_stripped(self, write: Write) -> None:
        """A line ending in \\r\\r\\n keeps one \\r, a control character: rejected."""
        stats = drain(write(f"{IDS[0]}\r\r\n{IDS[1]}\r\n"))
        assert stats.rejected_by_reason == {"control_character": 1}
        assert stats.accepted == 1

    def test_lone_cr_does_not_split(self, write: Write) -> None:
        """Old Mac line endings make one line holding a CR, which is rejected, not split."""
        stats = drain(write(f"{IDS[0]}\r{IDS[1]}\n"))
        assert (stats.lines, stats.rejected) == (1, 1)


class TestByteOrderMark:
    def test_bom_at_start_is_stripped(self, write: Write) -> None:
        """The UTF-8 BOM before the first line is not part of the first ID."""
        stats = drain(write(b"\xef\xbb\xbf" + "\n".join(IDS).encode()))
        assert (stats.accepted, stats.rejected) == (len(IDS), 0)

    def test_bom_later_is_rejected(self, write: Write) -> None:
        """A BOM inside the file (two files concatenated) is a format character: rejected."""
        stats = drain(write(f"{IDS[0]}\n\ufeff{IDS[1]}\n"))
        assert stats.rejected_by_reason == {"control_character": 1}

    def test_bom_only_is_empty(self, write: Write) -> None:
        """A file holding only a BOM is an empty file."""
        with pytest.raises(InputError, match="empty"):
            drain(write(b"\xef\xbb\xbf"))


class TestLongLines:
    def test_long_line_is_rejected_with_its_number(self, write: Write) -> None:
        """A line over the limit is rejected as too_long, and the lines after it still count."""
        stats = drain(write(f"{IDS[0]}\n{'x' * 3000}\n{IDS[1]}\n"))
        assert stats.rejected_by_reason == {"too_long": 1}
        assert stats.reject_lines == {"too_long": (2,)}
        assert stats.accepted == 2

    @pytest.mark.parametrize("block_size", [7, 64, 1 << 20])
    def test_limit_is_exact_whatever_the_block_size(self, write: Write, block_size: int) -> None:
        """A line of exactly the limit passes, one byte more does not, across block edges."""
        path = write(b"a" * 16 + b"\r\n" + b"b" * 17 + b"\n" + b"c" * 16)
        cut = lines_of(path, limit=16, block_size=block_size)
        assert [n for n, _ in cut] == [1, 2, 3]
        stats = drain(path, id_type="username", max_line_bytes=16, block_size=block_size)
        assert (stats.accepted, stats.rejected_by_reason) == (2, {"too_long": 1})

    @pytest.mark.parametrize("fast", [True, False])
    def test_limit_below_an_object_id_rejects_plain_ids(self, write: Write, fast: bool) -> None:
        """A 24-hex-digit line (CRLF or not) fits a limit of 24 bytes, not of 23, on either path."""
        path = write(f"{IDS[0]}  \n{IDS[1]}\n{IDS[2].upper()}\r\n")
        for limit, rejected in ((23, (1, 2, 3)), (24, (1,))):
            stats = drain(path, max_line_bytes=limit, fast=fast)
            assert stats.reject_lines == {"too_long": rejected}
            assert stats.accepted == 3 - len(rejected)

    def test_a_huge_line_is_never_held(self, write: Write) -> None:
        """A line of several MB costs about one block of memory, not its length."""
        path = write(IDS[0].encode() + b"\n" + b"z" * (6 << 20) + b"\n" + IDS[1].encode() + b"\n")
        tracemalloc.start()
        try:
            stats = drain(path, max_line_bytes=256, block_size=64 << 10, threaded=False)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert (stats.lines, stats.accepted, stats.rejected) == (3, 2, 1)
        assert peak < 2 << 20

    def test_long_line_preview_is_its_beginning(self, write: Write) -> None:
        """The rejected long line shows its first bytes, cut with an ellipsis."""
        rejects: list[str] = []
        path = write(b"q" * 100_000 + b"\n")
        ingest(path, block_size=4096, on_reject=lambda r: rejects.append(r.value)).drain()
        assert rejects == ["q" * 80 + "…"]

    def test_long_comment_and_blank_lines_are_skipped(self, write: Write) -> None:
        """Over-long comment and blank lines are still comments and blank lines."""
        path = write("#" + "c" * 5000 + "\n" + " " * 5000 + "\r\n" + IDS[0] + "\n")
        stats = drain(path, block_size=1024)
        assert stats.skipped_by_reason == {"comment": 1, "blank": 1}
        assert stats.accepted == 1


class TestGzip:
    def test_detected_by_magic_bytes_not_name(self, write: Write) -> None:
        """A gzip file named .txt is inflated; the result equals the plain file's."""
        plain = write("\n".join(IDS) + "\n", "plain.txt")
        packed = write(gzip.compress(plain.read_bytes()), "packed.txt")
        assert drain(packed).sha256 == drain(plain).sha256

    def test_gz_name_without_gzip_content_is_plain(self, write: Write) -> None:
        """A .gz name over plain text is read as plain text."""
        assert drain(write("\n".join(IDS) + "\n", "ids.txt.gz")).accepted == len(IDS)

    def test_concatenated_members(self, write: Write) -> None:
        """`cat a.gz b.gz` is one input."""
        path = write(gzip.compress(f"{IDS[0]}\n".encode()) + gzip.compress(f"{IDS[1]}\n".encode()))
        assert drain(path).accepted == 2

    def test_truncated_gzip_is_an_error(self, write: Write) -> None:
        """A gzip file cut short is refused, not silently shortened."""
        data = gzip.compress(("\n".join(IDS) + "\n").encode() * 50)
        with pytest.raises(InputError, match="truncated gzip"):
            drain(write(data[: len(data) // 2], "cut.gz"))

    def test_a_truncated_gzip_names_the_line_it_breaks_off_at(self, write: Write) -> None:
        """The error names the line the data ends in: the line after the last whole one."""
        ids = object_ids(20_000)
        data = gzip.compress(("\n".join(ids) + "\n").encode())
        cut = data[: len(data) * 6 // 10]
        whole = _inflate_what_is_there(cut)
        line = whole.count(b"\n") + 1
        with pytest.raises(InputError, match=rf"cut\.gz:{line}: truncated gzip"):
            drain(write(cut, "cut.gz"))

    def test_corrupt_gzip_is_an_error(self, write: Write) -> None:
        """Damaged deflate data is refused with the file name."""
        data = bytearray(gzip.compress(("\n".join(IDS) + "\n").encode() * 50))
        data[20:40] = b"\xff" * 20
        with pytest.raises(InputError, match=r"bad\.gz: corrupt gzip"):
            drain(write(bytes(data), "bad.gz"))

    def test_input_digest_is_of_the_compressed_bytes(self, write: Write) -> None:
        """The manifest digest is the file's own SHA-256, as `sha256sum` prints it."""
        path = write(gzip.compress(b"\n".join(i.encode() for i in IDS)), "ids.gz")
        reader = ingest(path)
        stats = reader.drain()
        expected = hashlib.sha256(path.read_bytes()).hexdigest()
        assert stats.input_sha256 == reader.input_digest() == expected


class TestStdin:
    def test_dash_reads_stdin(self) -> None:
        """`-` reads the given stream and names it <stdin>."""
        stream = io.BytesIO(("\n".join(IDS) + "\n").encode())
        stats = drain("-", stdin=stream)
        assert (stats.path, stats.accepted) == ("<stdin>", len(IDS))

    def test_gzip_on_stdin(self) -> None:
        """Compressed stdin is inflated like a compressed file."""
        stream = io.BytesIO(gzip.compress(("\n".join(IDS) + "\n").encode()))
        assert drain("-", stdin=stream).accepted == len(IDS)


class TestHeldStream:
    @given(data=st.binary(max_size=300), first=st.integers(0, 300), step=st.integers(1, 64))
    def test_the_bytes_read_ahead_come_again_then_the_rest(
        self, data: bytes, first: int, step: int
    ) -> None:
        """After a rewind, reads in any size give every byte of the stream once, in order."""
        held = HeldStream(io.BytesIO(data))
        assert held.read(first) == data[:first]
        held.rewind()
        parts = iter(lambda: held.read(step), b"")
        assert b"".join(parts) == data

    def test_a_run_reads_a_checked_pipe_from_its_start(self) -> None:
        """The reader given a held stream after a partial read sees the whole input."""
        raw = ("\n".join(IDS) + "\n").encode()
        held = HeldStream(io.BytesIO(raw))
        assert drain("-", stdin=held).accepted == len(IDS)  # the check's pass
        held.rewind()
        stats = drain("-", stdin=held)
        assert (stats.accepted, stats.input_sha256) == (len(IDS), hashlib.sha256(raw).hexdigest())


class TestNotText:
    @pytest.mark.parametrize(
        ("content", "message"),
        [
            (b"", "empty file"),
            (gzip.compress(b""), "empty after gunzip"),
            ("abc\n".encode("utf-16"), "UTF-16"),
            ("abcdef\n".encode("utf-16-le") * 20, "UTF-16LE"),
            (b"PK\x03\x04" + b"\0" * 100, "ZIP archive"),
            (bytes(range(256)) * 8, "binary data"),
        ],
    )
    def test_refused_with_one_line(self, write: Write, content: bytes, message: str) -> None:
        """What is not a text file is refused with a message naming the file."""
        path = write(content, "bad.txt")
        with pytest.raises(InputError, match=message) as info:
            drain(path)
        assert str(info.value).startswith(f"{path}:") and "\n" not in str(info.value)

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing file is refused when the Ingest is made."""
        with pytest.raises(InputError, match="no such file"):
            ingest(tmp_path / "nope.txt")

    def test_directory(self, tmp_path: Path) -> None:
        """A directory is refused when the Ingest is made."""
        with pytest.raises(InputError, match="is a directory"):
            ingest(tmp_path)

    def test_a_few_nul_bytes_are_rejected_lines_not_a_binary(self, write: Write) -> None:
        """Stray NULs make their lines rejected; the file is still read."""
        stats = drain(write(f"{IDS[0]}\n{IDS[1][:5]}\0{IDS[1][6:]}\n\0\n{IDS[2]}\n"))
        assert stats.rejected_by_reason == {"nul_byte": 2}
        assert accounted(stats)


class TestBlocks:
    @pytest.mark.parametrize("block_size", [1, 3, 25, 26, 4096])
    def test_batches_do_not_depend_on_block_size(self, write: Write, block_size: int) -> None:
        """Any block size gives the same batches as the default one."""
        text = "\ufeff" + "\r\n".join([*IDS, "", "# c", IDS[0].upper(), "x" * 40, *IDS[:2]]) + "\n"
        path = write(text)
        assert batches(path, block_size=block_size, batch_size=4) == batches(path, batch_size=4)

    def test_reads_start_small_and_double(self, write: Write) -> None:
        """The first read is FIRST_BLOCK, each next one twice the last, then BLOCK_SIZE."""
        ids = object_ids(200_000)
        path = write("\n".join(ids) + "\n")
        marks = [0]
        with InputReader(str(path)) as reader:
            for _ in reader.pieces(1024):
                if reader.bytes_read != marks[-1]:
                    marks.append(reader.bytes_read)
        sizes = [b - a for a, b in itertools.pairwise(marks)]
        assert sizes[:6] == [FIRST_BLOCK << k for k in range(6)]
        assert set(sizes[6:-1]) <= {BLOCK_SIZE} and marks[-1] == path.stat().st_size

    def test_a_csv_longer_than_its_first_chunks_keeps_every_line_in_order(
        self, write: Write
    ) -> None:
        """CSV chunks also start small and grow; no line is lost or moved across them."""
        ids = object_ids(5 * FIRST_CHUNK_LINES + 7)
        path = write("id,name\n" + "".join(f"{i},x\n" for i in ids), "in.csv")
        assert [i for b in batches(path, column="id") for i in b.ids] == ids


def _inflate_what_is_there(data: bytes) -> bytes:
    """What a cut gzip stream inflates to before it ends."""
    return zlib.decompressobj(wbits=31).decompress(data)
