"""The run's records besides the ledger: the JSON event log and the hash-chained audit journal."""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from bulkresign.audit import AuditJournal
from bulkresign.chain import ANCHOR_KEY
from bulkresign.errors import BulkResignError, LedgerError
from bulkresign.events import Events, FanOut
from bulkresign.job import JobConfig, JobInfo, JobOutcome
from bulkresign.ledger import Ledger
from bulkresign.logs import configure_logging, get_logger
from bulkresign.models import LineOutcome
from bulkresign.telemetry import JournalEvents, LogEvents

__all__ = [
    "ANCHOR_EVERY",
    "Records",
    "count_problems",
    "mark_report",
    "print_summary",
    "read_ingest_stats",
    "wrote_report",
]


#: Seconds between journal anchors: each costs an fsync of the journal; a resumed run verifies
#: the entries written since the last one (about 600 a second at 300 requests a second).
ANCHOR_EVERY = 1.0


class Records:
    """Opens the log and the journal once the run is confirmed; closes them with a summary."""

    def __init__(self, cfg: JobConfig, args: argparse.Namespace) -> None:
        self.cfg = cfg
        self.log = args.log if args.log is not None else Path(f"{cfg.state}.log")
        self.journal = args.journal if args.journal is not None else Path(f"{cfg.state}.journal")
        self.reason: str = args.reason
        self.log_ids: bool = args.log_ids
        self.new_journal: bool = getattr(args, "new_journal", False)
        self._journal: AuditJournal | None = None
        self._anchored_at = -ANCHOR_EVERY

    def events(self, info: JobInfo) -> Events:
        """Start logging and journaling for the confirmed run; the dispatcher's hooks."""
        cfg = self.cfg
        configure_logging(
            self.log,
            secrets=[cfg.credentials.access_key_secret.reveal()],
            log_ids=self.log_ids,
            pseudonym_key=info.pseudonym_key,
        )
        anchor, lost = info.journal_anchor, None
        if self.new_journal and anchor is not None and anchor.entries:
            for there in (self.journal, Path(anchor.path)):
                if there.exists():  # a journal that is there is continued, or moved aside
                    raise LedgerError(
                        f"{there}: --new-journal is for a lost journal, and this one is there; "
                        "if it fails verification, move it aside (it is evidence) first"
                    )
            lost, anchor = anchor, None
        journal = AuditJournal.open(self.journal, since=anchor)
        self._journal = journal
        journal.run_started(
            reason=self.reason,
            resuming=info.resuming,
            userpool_id=info.userpool_id,
            state=str(cfg.state.absolute()),  # compared, made absolute, by check_journal_file
            durable=True,
            **self.started_as(),  # what check_journal_file holds a state file left empty to
        )
        if lost is not None:  # the journal this one replaces, and the point the ledger anchored
            journal.append("journal_replaces", path=lost.path, entries=lost.entries, head=lost.head)
        get_logger().info("run_started", resuming=info.resuming, userpool_id=info.userpool_id)
        return FanOut(LogEvents(), JournalEvents(journal))

    def started_as(self) -> dict[str, str]:
        """What the journal's ``run_started`` records of this run that binds it to its input."""
        cfg = self.cfg
        return {
            "host": cfg.host,
            "endpoint": str(cfg.endpoint),
            "id_type": str(cfg.spec.id_type),
            "input": cfg.spec.path,
        }

    def gone(self) -> str | None:
        """Why the audit journal is no longer where the run writes it, if it is not."""
        if self._journal is None or self._journal.in_place():
            return None
        return (
            f"{self.journal}: the audit journal was moved, deleted or cut while the run wrote "
            "it; put it back before resuming (if it is lost, resume with --new-journal)"
        )

    def stamp(self) -> Mapping[str, object]:
        """The journal's anchor for the ledger's next commit, at most once a second.

        Called in the ledger's worker thread (:class:`~bulkresign.checkpoint.Checkpointer`).
        """
        now = time.monotonic()
        if self._journal is None or now - self._anchored_at < ANCHOR_EVERY:
            return {}
        anchor = self._journal.anchor()
        if anchor is None:
            return {}
        self._anchored_at = now
        return {ANCHOR_KEY: anchor.as_json()}

    def close(self, outcome: JobOutcome) -> None:
        """Record how the run ended in both records."""
        s = outcome.stats
        fields: dict[str, object] = {
            "finished": outcome.result.finished,
            "stop_reason": outcome.result.stop_reason,
            "resigned": s.resigned + s.resigned_by_readback,
            "not_found": s.not_found,
            "failed": s.failed,
            "requests": s.requests,
            "in_doubt": s.in_doubt,
        }
        get_logger().info("run_ended", **fields)
        if self._journal is not None:
            self._journal.append("run_finished", durable=True, **fields)
            anchor = self._journal.anchor()
            self._journal.close()
            if anchor is not None:
                self._anchor_end(anchor.as_json())

    def _anchor_end(self, anchor: object) -> None:
        """Anchor the journal's last line in the ledger, so no line of it can go unnoticed.

        The commits anchor at most once a second: a short run's journal would otherwise be
        anchored at its first line, and `audit verify --state` could not tell it was cut.
        """
        try:
            ledger = Ledger.open(self.cfg.state)
            try:
                with ledger.transaction():
                    ledger.set_meta_json(ANCHOR_KEY, anchor)
            finally:
                ledger.close()
        except (BulkResignError, OSError, sqlite3.Error) as exc:  # the run is over: say so
            print(f"bulkresign: warning: the journal's end is not anchored: {exc}", file=sys.stderr)


def read_ingest_stats(state: Path) -> dict[str, object] | None:
    """The ingest counts the ledger recorded once the input was read to its end."""
    rows = _query(state, "SELECT value FROM meta WHERE key = 'ingest'")
    return dict(orjson.loads(rows[0][0])) if rows else None


def count_problems(state: Path) -> int | None:
    """IDs the whole job (every run on this state file) recorded not_found or failed."""
    problems = problem_counts(state)
    return None if problems is None else sum(problems.values())


def problem_counts(state: Path) -> dict[LineOutcome, int] | None:
    """IDs the whole job recorded not_found and failed (a small table: no pass over batches)."""
    rows = _query(
        state,
        "SELECT outcome, count(*) FROM id_outcomes "
        "WHERE outcome IN ('not_found', 'failed') GROUP BY outcome",
    )
    if rows is None:
        return None
    counts = {LineOutcome(o): int(n) for o, n in rows}
    return {o: counts.get(o, 0) for o in (LineOutcome.NOT_FOUND, LineOutcome.FAILED)}


#: The ledger's note of the report its run wrote (``run --report``): device and inode.
REPORT_KEY = "report_file"


def mark_report(state: Path, report: Path) -> None:
    """Note in the state file the report ``run --report`` just wrote: a resume of the run may
    write over that file, and only that one."""
    st = report.stat()
    ledger = Ledger.open(state)
    try:
        with ledger.transaction():
            ledger.set_meta_json(REPORT_KEY, [st.st_dev, st.st_ino])
    finally:
        ledger.close()


def wrote_report(state: Path, report: Path) -> bool:
    """Whether ``report`` is the very file an earlier run on ``state`` wrote as its report."""
    if not state.is_file():
        return False
    rows = _query(state, "SELECT value FROM meta WHERE key = ?", (REPORT_KEY,))
    try:
        st = report.stat()
    except OSError:
        return False
    return rows is not None and any(orjson.loads(v) == [st.st_dev, st.st_ino] for (v,) in rows)


def _query(state: Path, sql: str, params: tuple[str, ...] = ()) -> list[tuple[Any, ...]] | None:
    """Rows read from the state file; ``None`` when it cannot be read any more (moved away as
    the run ended: the run's stop reason or the summary says so)."""
    try:
        conn = sqlite3.connect(f"file:{state}?mode=ro", uri=True)
        try:
            return list(conn.execute(sql, params).fetchall())
        finally:
            conn.close()
    except sqlite3.Error:
        return None


def print_summary(
    outcome: JobOutcome, ingest: dict[str, object] | None, files: list[Path], state: Path
) -> None:
    """The final table, to stderr, and the path of every file written.

    A finished job's totals count every run on the state file: each accepted ID ended resigned,
    not found or failed. The rest counts this run alone (a resume's share).
    """
    s = outcome.stats
    table = Table(title="bulkresign summary", show_header=False)
    if ingest is not None:
        for key in ("lines", "accepted", "duplicates", "rejected", "skipped", "excluded"):
            table.add_row(f"input {key}", f"{ingest.get(key, 0):,}")
    problems = problem_counts(state) if ingest is not None and outcome.result.finished else None
    if ingest is not None and problems is not None:
        accepted = int(ingest.get("accepted", 0))  # type: ignore[call-overload]
        job = [
            ("resigned, all runs", accepted - sum(problems.values())),
            ("not found, all runs", problems[LineOutcome.NOT_FOUND]),
            ("failed, all runs", problems[LineOutcome.FAILED]),
        ]
        for name, value in job:
            table.add_row(name, f"{value:,}")
        table.add_section()
    rows = [
        ("this run: resigned by the call", s.resigned),
        ("this run: resigned, by read-back", s.resigned_by_readback),
        ("this run: not found", s.not_found),
        ("this run: failed", s.failed),
        ("requests", s.requests),
        ("retries", s.retries),
        ("throttled", s.throttled),
        ("in doubt (read back)", s.in_doubt),
        ("read-backs", s.readbacks),
    ]
    for name, value in rows:
        table.add_row(name, f"{value:,}")
    table.add_row("elapsed", f"{s.elapsed:,.1f} s")
    table.add_row("status", "finished" if outcome.result.finished else "stopped, resumable")
    console = Console(file=sys.stderr)
    console.print(table)
    for path in files:
        console.print(f"  {path}")
