"""Measure a run against a local emulator: the figures behind ``bulkresign bench`` and benchmarks/.

* :mod:`~bulkresign.bench.probe` — an emulator in a thread that logs every call's arrival, and
  the :class:`RunReport` those logs make;
* :mod:`~bulkresign.bench.run` — generated inputs and :func:`measure_run`, one whole ``run_job``
  in a child process (:mod:`~bulkresign.bench.client`);
* :mod:`~bulkresign.bench.targets` — the targets of docs/benchmarks.md, as :class:`Check` lists.
"""

from __future__ import annotations

from bulkresign.bench.client import demo_credentials
from bulkresign.bench.probe import Probe, RunReport, Second, busiest_window, summarize
from bulkresign.bench.run import measure_run, write_ids
from bulkresign.bench.targets import (
    Check,
    end_to_end_bound,
    end_to_end_checks,
    rate_checks,
)

__all__ = [
    "Check",
    "Probe",
    "RunReport",
    "Second",
    "busiest_window",
    "demo_credentials",
    "end_to_end_bound",
    "end_to_end_checks",
    "measure_run",
    "rate_checks",
    "summarize",
    "write_ids",
]
