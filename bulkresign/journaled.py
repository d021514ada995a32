"""What the audit journal says was sent after the ledger's last anchor: the calls a stale ledger
does not know.

Every commit of the ledger may carry the journal's anchor (:mod:`bulkresign.chain`); every
``batch_sent`` line is written after the commit of its batch's intent. So a ``batch_sent`` after
the anchor names a call the ledger normally holds as SENDING — unless the ledger lost commits:
its ``-wal`` file deleted between runs, or an older copy of it put back. A resume from such a
ledger would form those batches again and send them blind, resigning their users twice. The
run reads the journal past the anchor and treats every batch sent there as in doubt: read back
before anything of it is sent again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import orjson

from bulkresign.chain import JournalAnchor
from bulkresign.errors import LedgerError
from bulkresign.ledger import Ledger
from bulkresign.models import BatchState

__all__ = ["mark_in_doubt", "sent_after"]


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


def mark_in_doubt(led: Ledger, *, seqs: Iterable[int]) -> None:
    """Move the batches ``seqs`` that the ledger holds as not sent (PENDING) to IN_DOUBT, so
    that they are read back before any resend (call inside a transaction)."""
    for seq in seqs:
        record = led.batch(seq)
        if record is not None and record.state is BatchState.PENDING:
            led.set_state(seq, BatchState.IN_DOUBT)
