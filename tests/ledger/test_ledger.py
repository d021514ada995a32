"""The ledger: durable, private, bound to one run, and exact about what is in flight."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import anyio
import pytest

from bulkresign.checkpoint import Checkpointer
from bulkresign.errors import ConfigError, LedgerError, LedgerMismatch
from bulkresign.ledger import IdOutcome, Ledger, Manifest
from bulkresign.models import Batch, BatchState, LineOutcome
from bulkresign.records import OPEN, TERMINAL
from bulkresign.sqlfile import is_frozen


def manifest(**changes: object) -> Manifest:
    base: dict[str, object] = {
        "input_path": "users.txt",
        "input_sha256": "a" * 64,
        "id_type": "user_id",
        "endpoint": "public-account",
        "host": "http://127.0.0.1:8787",
        "userpool_id": "pool1",
        "batch_size": 50,
        "input_options": "{}",
        "tool_version": "0.1.0",
        "pseudonym_key": "00" * 16,
    }
    base.update(changes)
    return Manifest(**base)  # type: ignore[arg-type]


def batch(seq: int, n: int = 3) -> Batch:
    ids = tuple(f"{seq:04d}{i:020x}" for i in range(n))
    return Batch(seq, ids, tuple(range(seq * n + 1, seq * n + n + 1)))


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger.open(tmp_path / "run.state", manifest())


class TestOpening:
    def test_files_are_private_under_a_permissive_umask(self, tmp_path: Path) -> None:
        """The state file and its -wal/-shm companions are created 0600 even under umask 022."""
        old = os.umask(0o022)
        try:
            led = Ledger.open(tmp_path / "run.state", manifest())
            with led.transaction():
                led.add_batch(batch(0))
        finally:
            os.umask(old)
        for name in ("run.state", "run.state-wal", "run.state-shm"):
            mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
            assert mode == 0o600, (name, oct(mode))

    def test_wal_and_full_synchronous(self, ledger: Ledger) -> None:
        """The ledger runs in WAL mode with synchronous=FULL (2)."""
        assert ledger.pragma("journal_mode") == "wal"
        assert ledger.pragma("synchronous") == 2

    def test_a_second_run_is_refused_while_the_first_holds_the_file(self, tmp_path: Path) -> None:
        """Two runs on one state file would resend each other's batches: the second is refused."""
        path = tmp_path / "run.state"
        first = Ledger.open(path, manifest())
        with pytest.raises(LedgerError, match="another bulkresign run is using"):
            Ledger.open(path, manifest())
        Ledger.open(path).close()  # read-only tools (status, report) still read it
        first.close()
        Ledger.open(path, manifest()).close()

    def test_a_state_file_that_cannot_be_created_is_one_error(self, tmp_path: Path) -> None:
        """A path the run cannot create: LedgerError naming the file, not a bare OSError."""
        (tmp_path / "a-file").write_text("x")
        with pytest.raises(LedgerError, match="cannot open the state file"):
            Ledger.open(tmp_path / "a-file" / "run.state", manifest())

    def test_reopening_with_the_same_manifest_resumes(self, tmp_path: Path) -> None:
        """A state file reopened for the same run keeps its batches."""
        path = tmp_path / "run.state"
        led = Ledger.open(path, manifest())
        with led.transaction():
            led.add_batch(batch(0))
        led.close()
        again = Ledger.open(path, manifest())
        assert again.last_seq() == 0

    @pytest.mark.parametrize(
        "field,value",
        [
            ("id_type", "email"),
            ("endpoint", "user"),
            ("host", "https://api.genauth.ai"),
            ("userpool_id", "other"),
            ("batch_size", 10),
            ("input_sha256", "b" * 64),
        ],
    )
    def test_a_foreign_state_file_is_refused(
        self, tmp_path: Path, field: str, value: object
    ) -> None:
        """A state file made for another input, ID type, endpoint, host or pool is refused."""
        path = tmp_path / "run.state"
        led = Ledger.open(path, manifest())
        with led.transaction():
            led.add_batch(batch(0))
        led.close()
        with pytest.raises(LedgerMismatch, match=field.split("_")[0]):
            Ledger.open(path, manifest(**{field: value}))

    def test_other_input_options_are_named_as_options(self, tmp_path: Path) -> None:
        """A resume without the run's --exclude, or with another --column, is told in the
        options' words (it printed the raw input_options JSON)."""
        path = tmp_path / "run.state"
        made = '{"column":"email","exclude_sha256":"' + "a" * 64 + '"}'
        led = Ledger.open(path, manifest(input_options=made))
        with led.transaction():
            led.add_batch(batch(0))
        led.close()
        given = '{"column":"mail","exclude_sha256":""}'
        with pytest.raises(LedgerMismatch) as info:
            Ledger.open(path, manifest(input_options=given))
        said = str(info.value)
        assert "made with --column 'email' (given: 'mail'), --exclude FILE (given: none)" in said
        assert "exclude_sha256" not in said

    def test_a_resume_with_no_header_reads_the_right_way_round(self, tmp_path: Path) -> None:
        """A run made with a header row, resumed with --no-header, says so (it said the run
        was made with --no-header 'True')."""
        path = tmp_path / "run.state"
        led = Ledger.open(path, manifest(input_options='{"header":"True"}'))
        with led.transaction():
            led.add_batch(batch(0))
        led.close()
        with pytest.raises(LedgerMismatch, match=r"made with a header row \(no --no-header\)"):
            Ledger.open(path, manifest(input_options='{"header":"False"}'))

    def test_another_inputs_state_file_names_its_input(self, tmp_path: Path) -> None:
        """--state naming another job's ledger says whose it is, not "the input changed"."""
        path = tmp_path / "run.state"
        led = Ledger.open(path, manifest())
        with led.transaction():
            led.add_batch(batch(0))
        led.close()
        other = manifest(input_path="other.txt", input_sha256="b" * 64)
        with pytest.raises(LedgerMismatch, match="made for the input users.txt, not other.txt"):
            Ledger.open(path, other)

    def test_a_state_file_without_a_batch_takes_the_new_options(self, tmp_path: Path) -> None:
        """Nothing recorded (a declined prompt): another ID type rebinds it, notes cleared,
        its pseudonym key kept."""
        path = tmp_path / "run.state"
        led = Ledger.open(path, manifest())
        with led.transaction():
            led.set_meta("plan_sha256", "a" * 64)
        key = led.meta()["pseudonym_key"]
        led.close()
        again = Ledger.open(path, manifest(id_type="email", pseudonym_key="cd" * 16))
        meta = again.meta()
        assert meta["id_type"] == "email" and meta["pseudonym_key"] == key
        assert "plan_sha256" not in meta

    def test_a_shared_device_is_refused_without_chmod_advice(self) -> None:
        """--state /dev/null: refused, and no advice to chmod a device everyone needs."""
        with pytest.raises((ConfigError, LedgerError)) as info:
            Ledger.open(Path("/dev/null"), manifest())
        assert "chmod" not in str(info.value)

    def test_a_readable_by_others_state_file_is_refused(self, tmp_path: Path) -> None:
        """A state file that group or others may read is refused with a chmod hint."""
        path = tmp_path / "run.state"
        Ledger.open(path, manifest()).close()
        path.chmod(0o644)
        with pytest.raises(ConfigError, match="chmod 600"):
            Ledger.open(path, manifest())

    def test_a_non_ledger_file_is_refused(self, tmp_path: Path) -> None:
        """A file that is not a SQLite ledger gives a one-line error."""
        path = tmp_path / "run.state"
        path.write_bytes(b"not a database at all" * 100)
        path.chmod(0o600)
        with pytest.raises(LedgerError, match="not a"):
            Ledger.open(path, manifest())

    def test_a_missing_file_without_manifest_is_refused(self, tmp_path: Path) -> None:
        """Read-only tools get a clear error for a state file that does not exist."""
        with pytest.raises(LedgerError, match="no such state file"):
            Ledger.open(tmp_path / "nope.state")

    def test_a_state_file_that_could_not_be_made_is_not_left_behind(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A full disk while the ledger is created leaves no file (a half-made one was refused
        by every later run as "not a bulkresign state file")."""

        def full(self: Ledger, manifest: Manifest) -> None:
            raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(Ledger, "_create", full)
        path = tmp_path / "run.state"
        with pytest.raises(LedgerError, match="disk is full"):
            Ledger.open(path, manifest())
        assert sorted(tmp_path.iterdir()) == []

    def test_a_ledger_in_a_read_only_folder_is_read_as_it_is(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Closed cleanly (no -wal content) in a folder SQLite cannot write to (an archive, a
        read-only mount): status and report read it immutable (they failed: "unable to open
        database file"); a -wal holding changes is not read around."""
        path = tmp_path / "run.state"
        led = Ledger.open(path, manifest())
        with led.transaction():
            led.add_batch(batch(0))
        led.close()
        Path(f"{path}-shm").unlink(missing_ok=True)
        monkeypatch.setattr("bulkresign.sqlfile.os.access", lambda p, mode: False)
        assert is_frozen(path)
        frozen = Ledger.open(path)
        assert frozen.last_seq() == 0
        frozen.close()
        Path(f"{path}-wal").write_bytes(b"x" * 32)
        assert not is_frozen(path)


class TestBatches:
    def test_intent_puts_a_batch_in_sending_with_its_ids(self, ledger: Ledger) -> None:
        """begin_attempt records exactly the IDs about to leave and moves the batch to SENDING."""
        b = batch(0)
        with ledger.transaction():
            ledger.add_batch(b)
            attempt = ledger.begin_attempt(0, b.ids[:2])
        rec = ledger.batch(0)
        assert rec is not None and rec.state is BatchState.SENDING
        assert attempt == 1
        assert ledger.attempts(0)[0].ids == b.ids[:2]
        assert ledger.attempts(0)[0].outcome is None

    def test_open_batches_are_those_not_terminal(self, ledger: Ledger) -> None:
        """open_batches lists PENDING, SENDING and IN_DOUBT batches, in order."""
        with ledger.transaction():
            for seq, state in enumerate(
                [BatchState.DONE, BatchState.SENDING, BatchState.REJECTED, BatchState.IN_DOUBT]
            ):
                ledger.add_batch(batch(seq))
                ledger.set_state(seq, state)
            ledger.add_batch(batch(4))
        assert [r.batch.seq for r in ledger.open_batches()] == [1, 3, 4]

    def test_open_count_counts_the_batches_not_terminal(self, ledger: Ledger) -> None:
        """open_count counts PENDING, SENDING and IN_DOUBT batches."""
        with ledger.transaction():
            for seq, state in enumerate(list(BatchState)):
                ledger.add_batch(batch(seq))
                ledger.set_state(seq, state)
        assert ledger.open_count() == len([s for s in BatchState if s not in TERMINAL])

    def test_the_open_batches_are_read_from_the_partial_index(self, tmp_path: Path) -> None:
        """A query on the open clause reads the index of open batches, not the whole table."""
        Ledger.open(tmp_path / "state", manifest()).close()
        conn = sqlite3.connect(tmp_path / "state")
        try:
            plan = conn.execute(
                f"EXPLAIN QUERY PLAN SELECT count(*) FROM batches WHERE {OPEN}"
            ).fetchall()
        finally:
            conn.close()
        # SQLite before 3.36 words it "SCAN TABLE batches USING COVERING INDEX batches_open".
        assert len(plan) == 1 and plan[0][3].endswith("USING COVERING INDEX batches_open")

    def test_per_id_outcomes_shrink_what_remains(self, ledger: Ledger) -> None:
        """IDs with a recorded outcome are not in remaining()."""
        b = batch(0)
        with ledger.transaction():
            ledger.add_batch(b)
            ledger.record_ids(0, [IdOutcome(b.ids[1], LineOutcome.NOT_FOUND, 2004, "gone")])
        rec = ledger.batch(0)
        assert rec is not None
        assert rec.remaining() == (b.ids[0], b.ids[2])
        assert rec.outcomes[b.ids[1]].api_code == 2004

    def test_a_failed_transaction_leaves_nothing(self, ledger: Ledger) -> None:
        """A transaction that raises is rolled back whole."""
        with pytest.raises(RuntimeError), ledger.transaction():
            ledger.add_batch(batch(0))
            raise RuntimeError
        assert ledger.last_seq() == -1


class TestCheckpointer:
    async def test_concurrent_writes_share_commits(self, ledger: Ledger) -> None:
        """Writes submitted together are made durable in fewer commits than writes."""
        ckpt = Checkpointer(ledger)

        async def add(seq: int) -> None:
            await ckpt.write(lambda led: led.add_batch(batch(seq)))

        async with anyio.create_task_group() as tg:
            for seq in range(64):
                tg.start_soon(add, seq)
        assert ledger.last_seq() == 63
        assert ckpt.stats.writes == 64
        assert ckpt.stats.commits < 64

    async def test_a_failing_write_does_not_undo_its_neighbours(self, ledger: Ledger) -> None:
        """One write that raises gets its error; the others in the same commit persist."""
        ckpt = Checkpointer(ledger)
        await ckpt.write(lambda led: led.add_batch(batch(0)))
        errors: list[BaseException] = []

        async def dup() -> None:
            try:
                await ckpt.write(lambda led: led.add_batch(batch(0)))
            except Exception as exc:
                errors.append(exc)

        async def fresh() -> None:
            await ckpt.write(lambda led: led.add_batch(batch(1)))

        async with anyio.create_task_group() as tg:
            tg.start_soon(dup)
            tg.start_soon(fresh)
        assert len(errors) == 1
        assert ledger.last_seq() == 1

    async def test_write_returns_the_functions_result(self, ledger: Ledger) -> None:
        """write() hands back what the function returned (the attempt number here)."""
        ckpt = Checkpointer(ledger)
        await ckpt.write(lambda led: led.add_batch(batch(0)))
        assert await ckpt.write(lambda led: led.begin_attempt(0, ("a",))) == 1
        assert await ckpt.write(lambda led: led.begin_attempt(0, ("a",))) == 2

    async def test_a_stamp_rides_on_every_commit(self, ledger: Ledger) -> None:
        """The stamp's items are set in the ledger's meta by each commit, with its changes."""
        stamps = iter(range(1, 10))
        ckpt = Checkpointer(ledger, stamp=lambda: {"mark": next(stamps)})
        await ckpt.write(lambda led: led.add_batch(batch(0)))
        assert ledger.meta()["mark"] == "1"
        await ckpt.write(lambda led: led.add_batch(batch(1)))
        assert ledger.meta()["mark"] == "2"

    async def test_sqlites_own_error_names_the_state_file(self, ledger: Ledger) -> None:
        """A full disk or a damaged page, met in a commit or a read, is a LedgerError naming
        the state file (it escaped as sqlite3's own, a traceback)."""
        ckpt = Checkpointer(ledger)

        def full(led: Ledger) -> None:
            raise sqlite3.OperationalError("database or disk is full")

        with pytest.raises(LedgerError, match=r"run\.state.*disk is full"):
            await ckpt.write(full)

        def damaged(led: Ledger) -> None:
            raise sqlite3.DatabaseError("database disk image is malformed")

        with pytest.raises(LedgerError, match="malformed"):
            await ckpt.read(damaged)


class TestPostedWrites:
    async def test_a_posted_change_rides_on_the_next_write(self, ledger: Ledger) -> None:
        """post() queues without committing; the next write commits both, in order."""
        ckpt = Checkpointer(ledger)
        await ckpt.write(lambda led: led.add_batch(batch(0)))
        ckpt.post(lambda led: led.set_state(0, BatchState.DONE))
        assert ckpt.queued == 1
        assert ledger.batch(0).state is BatchState.PENDING  # type: ignore[union-attr]
        await ckpt.write(lambda led: led.add_batch(batch(1)))
        assert ckpt.queued == 0
        assert ledger.batch(0).state is BatchState.DONE  # type: ignore[union-attr]

    async def test_a_read_sees_every_change_posted_before_it(self, ledger: Ledger) -> None:
        """read() commits the queue first, so it never misses a posted outcome."""
        ckpt = Checkpointer(ledger)
        await ckpt.write(lambda led: led.add_batch(batch(0)))
        ckpt.post(lambda led: led.set_state(0, BatchState.DONE))
        rec = await ckpt.read(lambda led: led.batch(0))
        assert rec is not None and rec.state is BatchState.DONE

    async def test_a_failed_posted_change_is_raised_by_the_next_flush(self, ledger: Ledger) -> None:
        """Nobody waits for a posted change, so its failure stops the next flush and post."""
        ckpt = Checkpointer(ledger)
        await ckpt.write(lambda led: led.add_batch(batch(0)))
        ckpt.post(lambda led: led.add_batch(batch(0)))  # a duplicate key
        with pytest.raises(LedgerError, match="failed"):
            await ckpt.flush()
        with pytest.raises(LedgerError):
            ckpt.post(lambda led: led.set_state(0, BatchState.DONE))

    async def test_a_cancelled_flush_still_commits_what_it_took(self, ledger: Ledger) -> None:
        """A cancellation that lands after the queue was taken never drops the changes in it."""
        ckpt = Checkpointer(ledger)
        for seq in range(8):
            ckpt.post(lambda led, seq=seq: led.add_batch(batch(seq)))
        with anyio.CancelScope() as scope:
            scope.cancel()
            await ckpt._flush_pending()  # the step a cancelled periodic flusher can be in
        assert ckpt.queued == 0
        assert ledger.last_seq() == 7

    async def test_a_flush_cancelled_before_it_starts_leaves_the_queue(
        self, ledger: Ledger
    ) -> None:
        """A flush cancelled before it takes the lock commits nothing and loses nothing."""
        ckpt = Checkpointer(ledger)
        ckpt.post(lambda led: led.add_batch(batch(0)))
        with anyio.CancelScope() as scope:
            scope.cancel()
            await ckpt.flush()
        assert ckpt.queued == 1
        await ckpt.flush()
        assert ledger.last_seq() == 0


class TestIntents:
    def test_a_batch_added_with_its_intent_is_sending_attempt_one(self, ledger: Ledger) -> None:
        """add_batch(intent=True) records the batch SENDING and attempt 1 with all its IDs."""
        b = batch(0)
        with ledger.transaction():
            ledger.add_batch(b, intent=True)
        rec = ledger.batch(0)
        assert rec is not None and rec.state is BatchState.SENDING and rec.attempts == 1
        (attempt,) = ledger.attempts(0)
        assert attempt.attempt == 1 and attempt.ids == b.ids and attempt.finished is None

    def test_withdrawing_an_unsent_intent_leaves_a_pending_batch(self, ledger: Ledger) -> None:
        """An intent whose request never left is forgotten: PENDING, no attempts."""
        with ledger.transaction():
            ledger.add_batch(batch(0), intent=True)
            ledger.withdraw_intent(0, 1)
        rec = ledger.batch(0)
        assert rec is not None and rec.state is BatchState.PENDING and rec.attempts == 0
        assert ledger.attempts(0) == []

    def test_an_attempt_with_an_outcome_is_never_withdrawn(self, ledger: Ledger) -> None:
        """withdraw_intent changes nothing once the attempt has a recorded outcome."""
        with ledger.transaction():
            ledger.add_batch(batch(0), intent=True)
            ledger.finish_attempt(0, 1, "ok", status_code=200)
            ledger.set_state(0, BatchState.DONE)
            ledger.withdraw_intent(0, 1)
        rec = ledger.batch(0)
        assert rec is not None and rec.state is BatchState.DONE
        assert len(ledger.attempts(0)) == 1
