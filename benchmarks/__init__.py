"""The benchmarks (docs/benchmarks.md): ``python -m benchmarks [--big] [--only NAME]``.

Each module also runs alone (``python -m benchmarks.NAME [--big]``) through its
``main(argv) -> int``, and writes its own section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

__all__ = ["SUITE"]

#: Every benchmark, in the order ``python -m benchmarks`` runs them: ``--only`` name → module.
SUITE = {
    "rate": "rate",
    "adaptive": "adaptive",
    "ceiling": "ceiling",
    "end-to-end": "endtoend",
    "checkpoint": "checkpoint",
    "resume": "resume",
    "ingest": "ingest",
}
