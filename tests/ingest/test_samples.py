"""Exact counts for every file in samples/: clean inputs in each format and the hostile ones."""

from __future__ import annotations

from typing import Any

import pytest

from bulkresign.errors import InputError
from tests.ingest.helpers import SAMPLES, accounted, drain

H = "hostile/"

#: file, options, (lines, accepted, duplicates, rejected, skipped), rejected lines by reason
CASES: list[
    tuple[str, dict[str, Any], tuple[int, int, int, int, int], dict[str, tuple[int, ...]]]
] = [
    ("users.txt", {}, (115, 100, 10, 0, 5), {}),
    ("users.txt.gz", {}, (115, 100, 10, 0, 5), {}),
    ("users.csv", {}, (35, 30, 3, 0, 2), {}),
    ("users.tsv", {}, (22, 20, 1, 0, 1), {}),
    ("users.tsv", {"id_type": "email"}, (22, 20, 1, 0, 1), {}),
    ("users.jsonl", {}, (27, 25, 1, 0, 1), {}),
    (
        "users.jsonl",
        {"id_type": "phone", "field": "phone"},
        (27, 25, 0, 1, 1),
        {"missing_field": (27,)},
    ),
    (H + "bom-crlf.txt", {}, (7, 6, 0, 0, 1), {}),
    (H + "lone-cr.txt", {}, (4, 2, 0, 2, 0), {"control_character": (1, 3)}),
    (H + "nul.txt", {}, (5, 3, 0, 2, 0), {"nul_byte": (2, 4)}),
    (H + "invalid-utf8.txt", {"id_type": "username"}, (7, 4, 0, 3, 0), {"invalid_utf8": (3, 5, 7)}),
    (H + "u2028.txt", {"id_type": "username"}, (6, 3, 0, 3, 0), {"control_character": (2, 4, 5)}),
    (H + "long-line.txt", {}, (3, 2, 0, 1, 0), {"too_long": (2,)}),
    (H + "junk.txt", {}, (10, 4, 1, 4, 1), {"invalid_user_id": (3, 4, 5, 8)}),
    (H + "no-column.csv", {"id_type": "email"}, (3, 2, 0, 0, 1), {}),
]


@pytest.mark.parametrize(("name", "options", "counts", "rejects"), CASES)
def test_exact_counts(
    name: str,
    options: dict[str, Any],
    counts: tuple[int, int, int, int, int],
    rejects: dict[str, tuple[int, ...]],
) -> None:
    """Each sample gives exactly the documented counts and rejected line numbers."""
    stats = drain(SAMPLES / name, **options)
    assert (stats.lines, stats.accepted, stats.duplicates, stats.rejected, stats.skipped) == counts
    assert dict(stats.reject_lines) == rejects
    assert accounted(stats)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        (H + "empty.txt", {}, "empty file"),
        (H + "binary.bin", {}, "not a text file: binary data"),
        (H + "utf16.txt", {}, "UTF-16"),
        (H + "no-column.csv", {"column": "email"}, "no column named 'email'"),
        (H + "non-string.jsonl", {}, "field 'userId' holds a number"),
    ],
)
def test_unusable_samples(name: str, options: dict[str, Any], message: str) -> None:
    """The unusable samples raise one InputError naming the file."""
    with pytest.raises(InputError, match=message) as info:
        drain(SAMPLES / name, **options)
    assert str(SAMPLES / name) in str(info.value)


def test_gzip_sample_equals_plain() -> None:
    """users.txt.gz holds users.txt: same IDs, same plan hash."""
    assert drain(SAMPLES / "users.txt.gz").sha256 == drain(SAMPLES / "users.txt").sha256
