"""What the audit journal says was sent after the ledger's last anchor: the calls a stale ledger
does not know.

Every commit of the ledger may carry the journal's anchor (:mod:`bulkresign.chain`); every
``batch_sent`` line is written after the commit of its batch's intent. So a ``batch_sent`` after
the anchor names a call the ledger normally holds as SENDING — unless the ledger lost commits:
its ``-wal`` file deleted between runs, or an older copy of it put back. A resume from such a
ledger would form those batches again and send them blind, resigning their users twice. The
run reads the journal past the anchor and treats every batch sent there as in doubt: read back
before anything of it is sent again.

What it learns is committed to the ledger before anything else (:func:`note_journaled`): the
batches it holds become IN_DOUBT, and those it does not hold yet are kept in its meta
(:data:`JOURNALED_KEY`) until the input forms them. Every commit moves the anchor to the
journal's end, so a run that stopped before forming them (a refusal, a kill) would otherwise have
left the next one nothing to read past the anchor.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import orjson

from bulkresign.chain import JournalAnchor
from bulkresign.errors import LedgerError
from bulkresign.ledger import Ledger
from bulkresign.models import BatchState

__all__ = ["JOURNALED_KEY", "journaled", "note_journaled", "sent_after", "unsettled"]

#: The ledger's meta key for the batches the journal records sent that the ledger does not hold.
JOURNALED_KEY = "journaled_sent"


def sent_after(journal: Path, anchor: JournalAnchor | None) -> Mapping[int, frozenset[str]]:
    """The batches the journal at ``journal`` records sent after ``anchor``, with their IDs.

    The journal was verified before (``AuditJournal.open``); a missing one records nothing
    (``--new-journal`` replaced it). Without an anchor every line is read.
    """
    sent: dict[int, set[str]] = {}
    start = anchor.offset if anchor is not None and anchor.path == str(journal.absolute()) else 0
    try:
        with journal.open("rb") as f:
            f.seek(start)
            for line in f:
                if b'"kind":"batch_sent"' not in line:
                    continue
                entry = orjson.loads(line)
                sent.setdefault(int(entry["batch"]), set()).update(entry["ids"])
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LedgerError(
            f"{journal}: cannot read the audit journal's last calls ({exc})"
        ) from None
    return {seq: frozenset(ids) for seq, ids in sent.items()}


def journaled(
    led: Ledger, journal: Path | None, anchor: JournalAnchor | None
) -> dict[int, frozenset[str]]:
    """Every batch known sent but not as sent by the ledger: the journal's past the anchor, and
    those an earlier run kept in the meta; with their IDs."""
    found: dict[int, set[str]] = {}
    raw = led.meta().get(JOURNALED_KEY)
    for seq, ids in (orjson.loads(raw) if raw else {}).items():
        found.setdefault(int(seq), set()).update(ids)
    if journal is not None:
        for seq, ids in sent_after(journal, anchor).items():
            found.setdefault(seq, set()).update(ids)
    return {seq: frozenset(ids) for seq, ids in found.items()}


def note_journaled(led: Ledger, *, sent: Mapping[int, frozenset[str]]) -> dict[int, frozenset[str]]:
    """Commit what :func:`journaled` found: the batches the ledger holds as not sent (PENDING)
    become IN_DOUBT, read back before any resend; those it does not hold at all are kept in the
    meta until the input forms them, and returned (call inside a transaction)."""
    pending, ahead = _unsent(led, sent)
    for seq in pending:
        led.set_state(seq, BatchState.IN_DOUBT)
    if ahead:
        led.set_meta_json(JOURNALED_KEY, {str(seq): sorted(ids) for seq, ids in ahead.items()})
    else:
        led.set_meta(JOURNALED_KEY, "")
    return ahead


def unsettled(led: Ledger, sent: Mapping[int, frozenset[str]]) -> int:
    """How many of the batches ``sent`` the ledger holds as not sent, or not at all."""
    pending, ahead = _unsent(led, sent)
    return len(pending) + len(ahead)


def _unsent(
    led: Ledger, sent: Mapping[int, frozenset[str]]
) -> tuple[list[int], dict[int, frozenset[str]]]:
    """Of the batches ``sent``: those the ledger holds as PENDING, and those it does not hold."""
    last = led.last_seq()
    pending = [seq for seq in sent if seq <= last and _pending(led, seq)]
    return pending, {seq: ids for seq, ids in sent.items() if seq > last}


def _pending(led: Ledger, seq: int) -> bool:
    record = led.batch(seq)
    return record is None or record.state is BatchState.PENDING
