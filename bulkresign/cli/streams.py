"""Standard error that outlives its reader.

A run writes its plan, progress and summary to stderr. When whoever reads it goes away — a pipe
into ``head`` or ``tee`` that ends, a terminal that closes — a write raises ``BrokenPipeError``
(Python ignores SIGPIPE: https://docs.python.org/3/library/signal.html#note-on-sigpipe) or
``EIO``, and that exception, raised in the progress display, stopped an irreversible run half way.
What stderr says is also in the run's log and journal, so once it is gone the writes are dropped
and the run goes on.
"""

from __future__ import annotations

import errno
from typing import TextIO

__all__ = ["Forgiving"]

#: The errors of a stream whose reader is gone: the pipe's, or a hung-up terminal's.
_GONE = (errno.EPIPE, errno.EIO, errno.ENXIO)


class Forgiving:
    """A text stream whose writes stop, silently, once its reader is gone."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self.stream.write(text)
            except OSError as exc:
                self._lost(exc)
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self.stream.flush()
            except OSError as exc:
                self._lost(exc)

    def _lost(self, exc: OSError) -> None:
        if exc.errno not in _GONE:
            raise exc
        self.gone = True

    def __getattr__(self, name: str) -> object:
        return getattr(self.stream, name)
