"""Formats: CSV/TSV columns and quoting, JSONL fields, and what --format auto picks."""

from __future__ import annotations

import json

import pytest

from bulkresign.batching import Ingest
from bulkresign.errors import ConfigError, InputError
from bulkresign.inputspec import Format, InputSpec
from bulkresign.models import IdType
from tests.ingest.helpers import Write, accounted, batches, drain, ingest, object_ids

IDS = object_ids(8)


def ids_of(path: object, **options: object) -> list[str]:
    return [i for b in batches(path, **options) for i in b.ids]  # type: ignore[arg-type]


class TestCsv:
    def test_column_by_name(self, write: Write) -> None:
        """--column NAME picks the header's column."""
        path = write(f"name,user_id\nJane,{IDS[0]}\nJoe,{IDS[1]}\n", "u.csv")
        assert ids_of(path, column="user_id") == IDS[:2]

    def test_column_by_index_counts_from_one(self, write: Write) -> None:
        """--column 2 is the second column."""
        path = write(f"name,id\nJane,{IDS[0]}\n", "u.csv")
        assert ids_of(path, column=2) == IDS[:1]

    def test_column_found_from_id_type(self, write: Write) -> None:
        """Without --column, a header named for the ID type is taken, and said."""
        path = write("Employee,E-Mail Address\nJane,Jane@Example.com\n", "u.csv")
        stats = drain(path, id_type="email")
        assert stats.accepted == 1 and "column 2 ('E-Mail Address')" in stats.format_note

    def test_ambiguous_header_needs_column(self, write: Write) -> None:
        """With several columns and no obvious one, the operator is asked to name it."""
        with pytest.raises(InputError, match=r"u\.csv:1: name the ID column with --column"):
            drain(write("a,b\n1,2\n", "u.csv"))

    def test_missing_named_column_is_an_error(self, write: Write) -> None:
        """A CSV without the named column is refused at its header line."""
        with pytest.raises(InputError, match="no column named 'email'; the header has: 'a', 'b'"):
            drain(write("a,b\n1,2\n", "u.csv"), column="email")

    def test_no_header(self, write: Write) -> None:
        """--no-header reads every row, column 1 unless told otherwise."""
        path = write(f"{IDS[0]},x\n{IDS[1]},y\n", "u.csv")
        assert ids_of(path, header=False) == IDS[:2]

    @pytest.mark.parametrize("suffix", ["csv", "tsv"])
    def test_a_record_with_more_fields_than_the_header_is_rejected(
        self, write: Write, suffix: str
    ) -> None:
        """`Smith,zed,7` under `name,ext`: an unquoted delimiter shifted the columns, and `zed`
        was taken for the ID (another account); trailing empty fields are harmless."""
        sep = "," if suffix == "csv" else "\t"
        rows = ["name", "ext"], ["Smith", "zed", "7"], ["Jones", "8", ""], ["Kim", "9"]
        path = write("".join(sep.join(r) + "\n" for r in rows), f"u.{suffix}")
        assert ids_of(path, id_type="external_id", column="ext") == ["8", "9"]
        stats = drain(path, id_type="external_id", column="ext")
        assert stats.rejected_by_reason == {"extra_fields": 1} and accounted(stats)

    def test_unnamed_trailing_header_columns_do_not_hide_a_shifted_row(self, write: Write) -> None:
        """`name,username,,` (an Excel export): `Smith,John,user1,` is shifted, rejected (the
        stray value hid in an unnamed column and `John` was resigned); empty ones pass."""
        path = write("name,username,,\nSmith,John,user1,\nLee,user2,,\n", "u.csv")
        assert ids_of(path, id_type="username") == ["user2"]
        assert drain(path, id_type="username").rejected_by_reason == {"extra_fields": 1}

    def test_without_a_header_the_first_record_sets_the_width(self, write: Write) -> None:
        """--no-header: a record wider than the first, with content there, is rejected; the
        first record's empty trailing fields do not widen it (`Smith,u485,u486,` slipped into
        them, and u485 was resigned)."""
        path = write("kim,1\nSmith,zed,7\nlee,2\n", "u.csv")
        assert ids_of(path, id_type="username", header=False) == ["kim", "lee"]
        path = write("Ann,u484,,\nSmith,u485,u486,\nJane,u487,,\n", "v.csv")
        assert ids_of(path, id_type="username", header=False, column=2) == ["u484", "u487"]

    @pytest.mark.parametrize("id_type", ["username", "external_id"])
    def test_a_loose_types_header_must_be_a_known_name_or_named(
        self, write: Write, id_type: str
    ) -> None:
        """`kim` over `zed`: any name is a valid username, so the header is refused unless it
        is a known column name or named with --column (kim was skipped as a header, exit 0)."""
        path = write("kim\nzed\n", "u.csv")
        with pytest.raises(InputError, match="could be a"):
            drain(path, id_type=id_type)
        assert ids_of(path, id_type=id_type, column="kim") == ["zed"]
        assert ids_of(path, id_type=id_type, header=False) == ["kim", "zed"]
        known = "username" if id_type == "username" else "externalId"
        assert ids_of(write(f"{known}\nzed\n", "k.csv"), id_type=id_type) == ["zed"]

    def test_quoted_fields(self, write: Write) -> None:
        """Quotes, doubled quotes and delimiters inside quotes are RFC 4180 CSV."""
        path = write(f'name,id\n"Doe, Jane","{IDS[0]}"\n"say ""hi""",{IDS[1]}\n', "u.csv")
        assert ids_of(path, column="id") == IDS[:2]

    def test_quoted_line_break_spans_lines(self, write: Write) -> None:
        """A record with a line break in a quoted field counts its later lines as continuation."""
        path = write(f'id,note\n{IDS[0]},"two\nlines"\n{IDS[1]},x\n', "u.csv")
        stats = drain(path, column="id")
        assert (stats.lines, stats.accepted) == (4, 2)
        assert stats.skipped_by_reason == {"header": 1, "continuation": 1}

    def test_an_unterminated_quote_stops_the_read(self, write: Write) -> None:
        """A quote still open past the line limit is an input error at its line: the lines after
        it may be the field's text, so none of them is read as a record."""
        path = write(f'id,note\n{IDS[0]},"open\n{IDS[1]},x\n{IDS[2]},y\n', "u.csv")
        with pytest.raises(InputError, match=r"u\.csv:2: a quoted field opened here does not"):
            drain(path, column="id", max_line_bytes=40)

    def test_a_quote_open_to_the_end_stops_the_read(self, write: Write) -> None:
        """A quote that never closes before the end of the input: an input error at its line."""
        path = write(f'id,note\n{IDS[0]},"open\n{IDS[1]},x\n', "u.csv")
        with pytest.raises(InputError, match="does not close before the end of the input"):
            drain(path, column="id")

    def test_a_long_quoted_field_is_never_read_as_records(self, write: Write) -> None:
        """A line too long to read that opens a quote (an odd number of them) stops the read:
        an ID on its own line inside the field must not be taken for a record."""
        note = "x" * 200
        path = write(f'id,note\n{IDS[0]},"{note}\n{IDS[1]}\n"\n{IDS[2]},y\n', "u.csv")
        with pytest.raises(InputError, match=r"u\.csv:2: unreadable \(too_long\), and a quoted"):
            drain(path, column="id", max_line_bytes=100)

    def test_an_unreadable_line_leaving_a_field_open_stops_the_read(self, write: Write) -> None:
        """A line that cannot be read and that a lenient reader leaves inside a quoted field
        (after a quote in a bare field, so its quotes are even): the read stops there rather
        than take the field's next line for a record."""
        data = b"id,name,note\n" + IDS[0].encode() + b',O"Brien,"note with a bad byte \xff\n'
        data += IDS[1].encode() + b'\nstill note"\n' + IDS[2].encode() + b",x,y\n"
        with pytest.raises(InputError, match=r"u\.csv:2: unreadable \(invalid_utf8\)"):
            drain(write(data, "u.csv"), column="id")

    def test_a_malformed_line_leaving_a_field_open_spans_to_its_close(self, write: Write) -> None:
        """A malformed line with even quotes whose last field a lenient reader opens: the record
        goes on until that field closes, and the ID on a line inside it is continuation."""
        data = f'id,name,note\n{IDS[0]},"a"x"y,"open note\n{IDS[1]}\nstill note"\n{IDS[2]},x,y\n'
        stats = drain(write(data, "u.csv"), column="id")
        assert stats.reject_lines == {"bad_csv": (2,)}
        assert stats.skipped_by_reason == {"header": 1, "continuation": 2}
        assert stats.accepted == 1 and accounted(stats)

    def test_a_bare_cr_ends_a_record_for_the_lenient_reading(self, write: Write) -> None:
        """A bare CR then a quote: a lenient reader (Excel, the csv module) starts a record there
        and opens a field, so the ID on the next line is the field's text, not a record."""
        data = f'user_id,note\n{IDS[0]},a\r"open\n{IDS[1]}\nclose"\n{IDS[2]},x\n'
        stats = drain(write(data, "u.csv"), column="user_id")
        assert stats.reject_lines == {"bad_csv": (2,)}
        assert stats.skipped_by_reason == {"header": 1, "continuation": 2}
        assert stats.accepted == 1 and accounted(stats)

    def test_a_nul_inside_a_quoted_field_is_named(self, write: Write) -> None:
        """A line that cannot be read inside a quoted field is named as the cause, with no
        advice to raise the limit."""
        path = write(f'id,note\n{IDS[0]},"a\nb\0c\nd"\n'.encode(), "u.csv")
        with pytest.raises(InputError, match="before line 3, which holds a NUL byte") as info:
            drain(path, column="id")
        assert "max-line-bytes" not in str(info.value)

    def test_a_quoted_header_cell_may_hold_a_line_break(self, write: Write) -> None:
        """ "Full\nName" as a spreadsheet exports it is a header cell, not a control character."""
        path = write(f'"Full\nName",user_id\nAnn,{IDS[0]}\n', "u.csv")
        assert ids_of(path, column="user_id") == IDS[:1]

    def test_a_headerless_identity_file_is_refused(self, write: Write) -> None:
        """An identity is shaped too (`<left>:<right>`): as a header it means no header."""
        path = write("idp1:u0\nidp1:u1\n", "u.csv")
        with pytest.raises(InputError, match="pass --no-header"):
            drain(path, id_type=IdType.IDENTITY)

    def test_a_malformed_record_is_rejected_with_its_lines(self, write: Write) -> None:
        """Text after a closing quote, the quote opened lines before: the record is rejected at
        its first line and its other lines are continuation, the ID among them not taken."""
        path = write(f'note,id\n"line one\n{IDS[1]}\nend" trailing\nz,{IDS[2]}\n', "u.csv")
        stats = drain(path, column="id")
        assert stats.reject_lines == {"bad_csv": (2,)}
        assert stats.skipped_by_reason == {"header": 1, "continuation": 2}
        assert stats.accepted == 1 and accounted(stats)

    def test_a_malformed_line_of_its_own_is_rejected_alone(self, write: Write) -> None:
        """Text after a closing quote on one line: that line is rejected, the next read."""
        path = write(f'note,id\n"a" b,{IDS[0]}\nz,{IDS[1]}\n', "u.csv")
        stats = drain(path, column="id")
        assert stats.reject_lines == {"bad_csv": (2,)}
        assert stats.accepted == 1 and accounted(stats)

    @pytest.mark.parametrize("id_type", ["email", "user_id"])
    def test_a_header_that_is_an_id_is_refused(self, write: Write, id_type: str) -> None:
        """A one-column file without a header: its first line is a valid ID, not a column name;
        refused rather than skipped unseen."""
        first = "user0@example.com" if id_type == "email" else IDS[0]
        path = write(f"{first}\n{IDS[1]}\n", "u.csv")
        with pytest.raises(InputError, match="pass --no-header"):
            drain(path, id_type=IdType(id_type))

    def test_a_header_named_for_its_ids_is_a_header(self, write: Write) -> None:
        """A header cell that names the ID type is taken as a header, as before."""
        stats = drain(write(f"user_id\n{IDS[0]}\n", "u.csv"))
        assert stats.accepted == 1 and stats.skipped_by_reason == {"header": 1}

    def test_a_file_of_bare_cr_lines_is_refused(self, write: Write) -> None:
        """Old Mac line endings make one line with CRs inside: an unreadable header, named."""
        path = write(b"email\ruser0@example.com\ruser1@example.com\r", "u.csv")
        with pytest.raises(InputError, match="bare CR"):
            drain(path, id_type=IdType.EMAIL)

    def test_short_row_is_missing_column(self, write: Write) -> None:
        """A row without the column is rejected, not an error."""
        stats = drain(write(f"a,id\n1,{IDS[0]}\n2\n", "u.csv"), column="id")
        assert stats.rejected_by_reason == {"missing_column": 1}

    def test_empty_field_is_rejected(self, write: Write) -> None:
        """An empty ID cell is rejected as empty."""
        stats = drain(write(f"a,id\n1,{IDS[0]}\n2,\n", "u.csv"), column="id")
        assert stats.rejected_by_reason == {"empty": 1}

    def test_delimiter(self, write: Write) -> None:
        """--delimiter sets the separator (European spreadsheets use ;)."""
        path = write(f"name;id\nJane;{IDS[0]}\n", "u.csv")
        assert ids_of(path, column="id", delimiter=";") == IDS[:1]

    def test_tsv(self, write: Write) -> None:
        """TSV is CSV with tabs."""
        assert ids_of(write(f"id\tname\n{IDS[0]}\tJane\n", "u.tsv"), column="id") == IDS[:1]

    def test_unreadable_header_is_an_error(self, write: Write) -> None:
        """A header that is not UTF-8 cannot name columns: refused."""
        with pytest.raises(InputError, match="unreadable header"):
            drain(write(b"n\xffame,id\n1,2\n", "u.csv"), column="id")


class TestPlainLines:
    @pytest.mark.parametrize(
        "first", ["username", "User Name", "externalId", "email", "login", "ID", "employee_id"]
    )
    def test_a_column_name_on_the_first_line_of_usernames_is_refused(
        self, write: Write, first: str
    ) -> None:
        """`username` over `kim` in a plain file: refused (it was sent, and the account named
        `username` resigned); --no-header says it is an ID."""
        path = write(f"# staff\n{first}\nkim\n", "u.txt")
        with pytest.raises(InputError, match=r"u\.txt:2: .* reads as a column name"):
            drain(path, id_type="username")
        assert ids_of(path, id_type="username", header=False) == [first, "kim"]

    def test_a_shaped_type_needs_no_such_check(self, write: Write) -> None:
        """`email` over an email: the word is not a valid email, rejected as a line is."""
        stats = drain(write("email\na@b.co\n", "u.txt"), id_type="email")
        assert (stats.accepted, stats.rejected) == (1, 1)


class TestJsonl:
    @pytest.mark.parametrize("keys", [("mobile", "phone"), ("mail", "Mail")])
    def test_two_keys_named_for_the_type_need_field(
        self, write: Write, keys: tuple[str, str]
    ) -> None:
        """`{"mobile": …, "phone": …}`: refused as two such CSV columns are (JSONL took
        `phone`, and resigned that account)."""
        id_type = "phone" if keys[0] == "mobile" else "email"
        value = "+15550000007" if id_type == "phone" else "a@b.co"
        row = json.dumps({keys[0]: value, keys[1]: value})
        with pytest.raises(InputError, match="keys that could hold the ID"):
            drain(write(row + "\n", "u.jsonl"), id_type=id_type)

    def test_field(self, write: Write) -> None:
        """--field names the key holding the ID."""
        path = write(f'{{"uid": "{IDS[0]}"}}\n{{"uid": "{IDS[1]}"}}\n', "u.jsonl")
        assert ids_of(path, field="uid") == IDS[:2]

    def test_the_only_key_is_the_field(self, write: Write) -> None:
        """Without --field, objects of one key give that key, as a one-column CSV does."""
        path = write(f'{{"u": "{IDS[0]}"}}\n{{"u": "{IDS[1]}"}}\n', "u.jsonl")
        stats = drain(path)
        assert stats.accepted == 2 and "field 'u'" in stats.format_note

    def test_field_found_from_id_type(self, write: Write) -> None:
        """Without --field, userId or user_id is taken for user_id."""
        path = write(f'{{"userId": "{IDS[0]}", "n": 1}}\n', "u.jsonl")
        stats = drain(path)
        assert stats.accepted == 1 and "field 'userId'" in stats.format_note

    def test_non_string_field_is_an_error(self, write: Write) -> None:
        """A number where the ID should be is refused with its line."""
        path = write(f'{{"userId": "{IDS[0]}"}}\n{{"userId": 42}}\n', "u.jsonl")
        with pytest.raises(InputError, match=r"u\.jsonl:2: field 'userId' holds a number"):
            drain(path)

    def test_bad_lines_are_rejected(self, write: Write) -> None:
        """Broken JSON, non-objects, missing fields and nulls are rejected, not fatal."""
        path = write(
            f'{{"userId": "{IDS[0]}"}}\n{{oops\n[1, 2]\n{{"other": 1}}\n{{"userId": null}}\n',
            "u.jsonl",
        )
        stats = drain(path)
        assert stats.rejected_by_reason == {"bad_json": 2, "missing_field": 2}

    def test_a_field_named_twice_with_two_values_is_rejected(self, write: Write) -> None:
        """Two values for the ID field (even one spelled with an escape): which one is meant?"""
        path = write(
            f'{{"userId": "{IDS[0]}", "userId": "{IDS[1]}"}}\n'
            f'{{"userId": "{IDS[2]}", "user\\u0049d": "{IDS[3]}"}}\n'
            f'{{"userId": "{IDS[4]}", "userId": "{IDS[4]}"}}\n',
            "u.jsonl",
        )
        stats = drain(path)
        assert stats.rejected_by_reason == {"duplicate_field": 2} and stats.accepted == 1

    def test_escaped_control_in_value_is_rejected(self, write: Write) -> None:
        """A \\u0000 escape decodes to NUL inside the value: rejected."""
        stats = drain(write('{"username": "a\\u0000b"}\n', "u.jsonl"), id_type="username")
        assert stats.rejected_by_reason == {"control_character": 1}


class TestAuto:
    @pytest.mark.parametrize(
        ("name", "content", "picked"),
        [
            ("ids.csv", "id\n1\n", Format.CSV),
            ("ids.TSV", "id\n1\n", Format.TSV),
            ("ids.ndjson", '{"id": "1"}\n', Format.JSONL),
            ("ids.csv.gz", "id\n1\n", Format.CSV),
            ("ids.txt", '# note\n{"a": 1}\n', Format.JSONL),
            ("ids.txt", "a\tb\n", Format.TSV),
            ("ids", "a,b\n", Format.CSV),
            ("ids.txt", "a@b.co\n", Format.LINES),
        ],
    )
    def test_picks_by_extension_then_content(
        self, write: Write, name: str, content: str, picked: Format
    ) -> None:
        """The extension decides; without one, the first significant line does."""
        reader = ingest(write(content, name), id_type="username", column=None)
        try:
            reader.drain()
        except InputError:
            pass  # some contents lack the ID column; the choice is made before that
        assert reader.format is picked

    def test_note_says_why(self, write: Write) -> None:
        """The stats say what was picked and why."""
        stats = drain(write(f"{IDS[0]}\n", "ids.txt"))
        assert (stats.format, stats.format_note) == (
            Format.LINES,
            "from the content: one value per line",
        )

    def test_field_on_csv_is_a_usage_error(self, write: Write) -> None:
        """--field on a CSV is a contradiction, refused before reading."""
        with pytest.raises(ConfigError, match="--field applies to JSONL"):
            drain(write("id\n1\n", "u.csv"), field="id")

    def test_a_path_object_is_taken_as_its_string(self, write: Write) -> None:
        """InputSpec(Path(...)) from a library caller reads as InputSpec(str(...)) does."""
        path = write("a@b.co\n", "ids.txt")
        spec = InputSpec(path, id_type=IdType.EMAIL)  # type: ignore[arg-type]
        assert spec.path == str(path)
        assert Ingest(spec).drain().accepted == 1
