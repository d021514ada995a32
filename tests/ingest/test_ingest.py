"""The front half as a whole: batches, determinism, exclusions, per-line rows and counts."""

from __future__ import annotations

import hashlib
import os
import threading
import time

import pytest

from bulkresign.batching import Ingest
from bulkresign.errors import ConfigError
from bulkresign.idkeys import national_number
from bulkresign.inputspec import InputSpec
from bulkresign.models import MAX_BATCH, Batch, IdType
from bulkresign.tally import LineKind
from tests.ingest.helpers import Write, accounted, batches, drain, ingest, object_ids

IDS = object_ids(260)


def messy(ids: list[str]) -> str:
    """IDs with duplicates, case changes, comments, blanks, padding and junk between them."""
    out = ["# header comment"]
    for i, v in enumerate(ids):
        out.append(v.upper() if i % 5 == 0 else v)
        if i % 7 == 0:
            out.append(f"  {ids[i // 2]}  ")
        if i % 11 == 0:
            out += ["", "not-an-id"]
    return "\r\n".join(out) + "\r\n"


class TestBatches:
    def test_sizes_and_order(self, write: Write) -> None:
        """Batches hold 50 IDs each but the last, numbered from 0, in input order."""
        got = batches(write("\n".join(IDS) + "\n"))
        assert [len(b.ids) for b in got] == [50] * 5 + [10]
        assert [b.seq for b in got] == list(range(6))
        assert [i for b in got for i in b.ids] == IDS

    def test_lines_point_at_first_occurrences(self, write: Write) -> None:
        """Each ID's line number is where it first appeared."""
        got = batches(write(f"# c\n{IDS[0]}\n\n{IDS[1]}\n{IDS[0]}\n{IDS[2]}\n"))
        assert got == [Batch(0, (IDS[0], IDS[1], IDS[2]), (2, 4, 6))]

    @pytest.mark.parametrize("size", [1, 7, MAX_BATCH])
    def test_batch_size_option(self, write: Write, size: int) -> None:
        """--batch-size chunks the same ID sequence differently."""
        got = batches(write("\n".join(IDS[:20]) + "\n"), batch_size=size)
        assert all(len(b.ids) == size for b in got[:-1]) and 1 <= len(got[-1].ids) <= size
        assert [i for b in got for i in b.ids] == IDS[:20]

    def test_batch_size_is_bounded(self, write: Write) -> None:
        """51 IDs per call is more than the API takes."""
        with pytest.raises(ConfigError, match="--batch-size must be 1..50"):
            InputSpec(str(write("x\n")), batch_size=51)

    def test_batch_count_is_the_same_counted_or_derived(self, write: Write) -> None:
        """batches() and drain() agree on the number of batches."""
        path = write(messy(IDS))
        reader = ingest(path)
        n = sum(1 for _ in reader.batches())
        assert reader.stats.batches == n == drain(path).batches

    def test_the_dedup_tables_size_is_counted(self, write: Write) -> None:
        """The counts carry the dedup table's bytes: at least 16 per accepted ID, 0 before."""
        path = write(messy(IDS))
        reader = ingest(path)
        assert reader.stats.dedup_bytes == 0
        stats = reader.drain()
        assert stats.dedup_bytes >= 16 * stats.accepted
        assert stats.as_dict()["dedup_bytes"] == stats.dedup_bytes


class TestDeterminism:
    def test_two_runs_give_the_same_batches(self, write: Write) -> None:
        """A resumed run re-reads and finds the very same batches."""
        path = write(messy(IDS))
        assert batches(path) == batches(path)

    @pytest.mark.parametrize(
        "options",
        [
            {"fast": False},
            {"threaded": False},
            {"block_size": 97},
            {"block_size": 5, "threaded": False, "fast": False},
        ],
    )
    def test_paths_agree(self, write: Write, options: dict[str, object]) -> None:
        """Vectorized or per-line, threaded or not, any block size: the same result."""
        path = write(messy(IDS))
        assert batches(path, **options) == batches(path)
        assert drain(path, **options) == drain(path)


class TestExclude:
    def test_excluded_ids_are_never_batched(self, write: Write) -> None:
        """Excluded IDs are counted as excluded, every time they appear."""
        path = write("\n".join([*IDS[:5], IDS[1].upper()]) + "\n")
        reader = ingest(path, exclude={IDS[1].upper(), IDS[3]})
        got = [i for b in reader.batches() for i in b.ids]
        assert got == [IDS[0], IDS[2], IDS[4]]
        assert reader.stats.excluded == 3 and accounted(reader.stats)

    @pytest.mark.parametrize("detailed", [False, True])
    def test_case_sensitive_emails_are_excluded_whatever_their_case(
        self, write: Write, detailed: bool
    ) -> None:
        """--case-sensitive-email keeps the case sent, but GenAuth matches emails without it:
        an excluded address protects every spelling of it."""
        path = write("User700@Example.com\nuser701@example.com\nUSER702@example.com\n")
        spec = InputSpec(str(path), IdType.EMAIL, case_sensitive_email=True)
        reader = Ingest(spec, exclude={"user700@example.com", "User702@Example.COM"})
        if detailed:
            kinds = [r.kind for r in reader.rows()]
            assert kinds == [LineKind.EXCLUDED, LineKind.ACCEPTED, LineKind.EXCLUDED]
        else:
            assert [i for b in reader.batches() for i in b.ids] == ["user701@example.com"]
            assert reader.stats.excluded == 2

    def test_case_sensitive_emails_are_deduplicated_whatever_their_case(self, write: Write) -> None:
        """--case-sensitive-email sends the first spelling as written; a later spelling of the
        same address is its duplicate, because GenAuth resolves both to one user."""
        path = write("User5@Example.com\nuser6@example.com\nUSER5@EXAMPLE.COM\n")
        reader = Ingest(InputSpec(str(path), IdType.EMAIL, case_sensitive_email=True))
        rows = list(reader.rows())
        assert [r.kind for r in rows] == [LineKind.ACCEPTED, LineKind.ACCEPTED, LineKind.DUPLICATE]
        reader = Ingest(InputSpec(str(path), IdType.EMAIL, case_sensitive_email=True))
        assert [i for b in reader.batches() for i in b.ids] == [
            "User5@Example.com",
            "user6@example.com",
        ]

    def test_phones_compare_without_their_country_code(self, write: Write) -> None:
        """+15550000007 and 5550000007 are one ID (GenAuth finds the user by either): the second
        is a duplicate, and an excluded spelling protects the other."""
        path = write("+15550000007\n5550000007\n555-000-0008\n+8613800000000\n")
        spec = InputSpec(str(path), IdType.PHONE)
        kinds = [r.kind for r in Ingest(spec, exclude={"+15550000008"}).rows()]
        assert kinds == [
            LineKind.ACCEPTED,
            LineKind.DUPLICATE,
            LineKind.EXCLUDED,
            LineKind.ACCEPTED,
        ]

    @pytest.mark.parametrize(
        ("phone", "national"),
        [
            ("+15550000007", "5550000007"),
            ("+8613800000000", "13800000000"),
            ("+447700900123", "7700900123"),
            ("+35312345678", "12345678"),
            ("5550000007", "5550000007"),
        ],
    )
    def test_national_number_strips_an_e164_country_code(self, phone: str, national: str) -> None:
        """1 and 7 are one digit, the listed ones two, the rest three (ITU-T E.164)."""
        assert national_number(phone) == national

    def test_invalid_exclusion_is_refused(self, write: Write) -> None:
        """An excluded value that is not an ID of the type is a usage error."""
        with pytest.raises(ConfigError, match="not a valid user_id"):
            ingest(write("x\n"), exclude={"nope"})


class TestRows:
    def test_one_row_per_line_agreeing_with_batches(self, write: Write) -> None:
        """rows() describes every line; its accepted rows are the batches' IDs and places."""
        path = write(messy(IDS))
        rows = list(ingest(path).rows())
        got = batches(path)
        assert [r.line for r in rows] == list(range(1, len(rows) + 1))
        accepted = [r for r in rows if r.kind is LineKind.ACCEPTED]
        assert [r.id for r in accepted] == [i for b in got for i in b.ids]
        assert all(got[r.batch].ids[r.position] == r.id for r in accepted)  # type: ignore[index]

    def test_kinds_and_reasons(self, write: Write) -> None:
        """Each kind of line is reported with its reason and raw text."""
        path = write(f"#c\n{IDS[0]}\n{IDS[0].upper()}\nbad\n\n{IDS[1]}\n")
        rows = list(ingest(path, exclude={IDS[1]}).rows())
        assert [(r.kind.value, r.reason) for r in rows] == [
            ("skipped", "comment"),
            ("accepted", None),
            ("duplicate", None),
            ("rejected", "invalid_user_id"),
            ("skipped", "blank"),
            ("excluded", None),
        ]
        assert rows[2].raw == IDS[0].upper() and rows[2].id == IDS[0]


class TestStats:
    def test_counts_add_up(self, write: Write) -> None:
        """lines = accepted + duplicates + rejected + skipped."""
        stats = drain(write(messy(IDS)))
        assert accounted(stats) and stats.done

    def test_sha256_is_of_the_id_type_and_the_accepted_ids_one_per_line(self, write: Write) -> None:
        """The plan hash is what sha256sum prints for the ID type and the accepted IDs, one per
        line."""
        path = write(messy(IDS))
        ids = [i for b in batches(path) for i in b.ids]
        lines = "".join(f"{i}\n" for i in ["user_id", *ids])
        assert drain(path).sha256 == hashlib.sha256(lines.encode()).hexdigest()

    def test_input_digest_is_the_file_hash(self, write: Write) -> None:
        """input_digest() is the SHA-256 of the raw input (the ledger binds a run to it)."""
        path = write(messy(IDS))
        reader = ingest(path)
        reader.drain()
        assert reader.input_digest() == hashlib.sha256(path.read_bytes()).hexdigest()

    def test_one_pass_per_ingest(self, write: Write) -> None:
        """An Ingest reads its input once; a second pass needs a new one."""
        reader = ingest(write(f"{IDS[0]}\n"))
        reader.drain()
        with pytest.raises(RuntimeError, match="reads its input once"):
            reader.drain()


class TestStreaming:
    def test_first_batch_before_the_input_ends(self) -> None:
        """A batch comes out while the writer still holds the pipe open."""
        read_fd, write_fd = os.pipe()
        with os.fdopen(read_fd, "rb") as stream, os.fdopen(write_fd, "wb") as sink:
            sink.write(("\n".join(IDS[:60]) + "\n").encode())
            sink.flush()
            got = ingest("-", stdin=stream).batches()
            started = time.monotonic()
            first = next(got)
            assert first.ids == tuple(IDS[:50]) and time.monotonic() - started < 5
            sink.close()
            assert [b.ids for b in got] == [tuple(IDS[50:60])]

    def test_closing_early_stops_the_helper_thread(self, write: Write) -> None:
        """Abandoning batches() half way leaves no reader thread behind."""
        path = write("\n".join(IDS * 20) + "\n")
        got = ingest(path, block_size=64).batches()
        next(got)
        got.close()
        assert not [t for t in threading.enumerate() if t.name.startswith("bulkresign-read")]
