"""From raw bytes to text bytes: gzip members, and refusing what is not text.

gzip is recognized by its magic bytes, whatever the file is called, and inflated one block at a
time so a small bomb cannot fill memory. Archives, workbooks, other compressors and UTF-16 are
named in the error, with what to do instead; any other input whose start is mostly control bytes
is refused as binary.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator

from bulkresign.errors import InputError

__all__ = ["BOM", "FOREIGN", "GZIP_MAGIC", "binary_verdict", "gunzip", "prepend"]

BOM = b"\xef\xbb\xbf"
GZIP_MAGIC = b"\x1f\x8b"
FOREIGN = (
    (b"\xff\xfe", "UTF-16/32 text (byte-order mark FF FE); save it as UTF-8"),
    (b"\xfe\xff", "UTF-16 text (byte-order mark FE FF); save it as UTF-8"),
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook?); export it as CSV or extract it first"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook; export it as CSV"),
    (b"\xfd7zXZ\x00", "xz-compressed; pipe it through `xz -dc` into `-`"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed; pipe it through `zstd -dc` into `-`"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive; extract it first"),
)
#: Bytes that are neither printable ASCII nor tab or a line ending (for the UTF-16 guess).
_NOT_PRINTABLE = bytes(b for b in range(256) if not (0x20 <= b < 0x7F or b in b"\t\n\r"))
#: Bytes text is made of: all but C0 controls (tab, LF, VT, FF, CR and ESC excepted) and DEL.
_TEXT_BYTES = bytes(b for b in range(256) if b >= 0x20 and b != 0x7F or b in b"\t\n\v\f\r\x1b")


def gunzip(
    first: bytes, rest: Iterator[bytes], block_size: int, fail: Callable[[str], InputError]
) -> Iterator[bytes]:
    """Inflate gzip members one after another, never more than ``block_size`` per call."""
    inflater = zlib.decompressobj(wbits=31)
    started = False
    for chunk in prepend(first, rest):
        data = chunk
        while True:
            if not started:
                data = data.lstrip(b"\0")  # zero padding after the last member is allowed
                if not data:
                    break
                started = True
            try:
                out = inflater.decompress(data, block_size)
            except zlib.error as exc:
                raise fail(f"corrupt gzip data ({exc})") from None
            if out:
                yield out
            if inflater.eof:  # another member may follow
                data = inflater.unused_data
                inflater = zlib.decompressobj(wbits=31)
                started = False
                continue
            data = inflater.unconsumed_tail
            if not data and not out:
                break  # needs more input
    if started:
        raise fail("truncated gzip data (the file ends inside a member)")


def prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    """``first`` (when not empty), then the blocks of ``rest``."""
    if first:
        yield first
    yield from rest


def binary_verdict(sample: bytes) -> str | None:
    """Why ``sample`` is not text, or ``None``.

    A few stray NULs make rejected lines, not a refused file; a file whose start is more than 5%
    control bytes is binary (the threshold git and file(1) use is similar in spirit: any NUL in the
    first 8000 bytes; ours tolerates damaged text).
    """
    controls = len(sample.translate(None, _TEXT_BYTES))
    if controls <= max(8, len(sample) // 20):
        return None
    for zeros, text, order in (
        (sample[1::2], sample[0::2], "LE"),
        (sample[0::2], sample[1::2], "BE"),
    ):
        if zeros.count(0) > 0.4 * len(zeros) and _mostly_printable(text.replace(b"\0", b"")):
            return f"looks like UTF-16{order} text without a byte-order mark; save it as UTF-8"
    share = 100 * controls // len(sample)
    return f"binary data ({share}% control bytes in the first {len(sample)} bytes)"


def _mostly_printable(data: bytes) -> bool:
    """Whether at least 90% of ``data`` is printable ASCII, tab or a line ending."""
    printable = len(data.translate(None, _NOT_PRINTABLE))
    return bool(data) and printable >= 0.9 * len(data)
