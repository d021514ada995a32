"""The benchmarks' PNGs. matplotlib is the optional ``bench`` extra: without it, no picture."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np

from bulkresign.bench import RunReport
from bulkresign.bench.probe import Times

__all__ = ["RESTART_SPAN", "plot_bars", "plot_resume", "plot_rss", "plot_timelines"]

#: Seconds after a restart that :func:`plot_resume` draws close up.
RESTART_SPAN = 20.0


def _pyplot() -> ModuleType | None:
    try:
        import matplotlib
    except ModuleNotFoundError:
        print("benchmarks: matplotlib is not installed (pip install '.[bench]'): no plot")
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_timelines(path: Path, runs: Sequence[tuple[str, RunReport]]) -> bool:
    """Admitted and throttled calls per second, and the client's paced rate, one panel a run."""
    plt = _pyplot()
    if plt is None:
        return False
    fig, axes = plt.subplots(len(runs), 1, figsize=(9, 3.2 * len(runs)), squeeze=False)
    for ax, (title, report) in zip(axes[:, 0], runs, strict=True):
        t = [s.t for s in report.timeline]
        ax.bar(t, [s.admitted for s in report.timeline], width=1.0, align="edge", label="admitted")
        ax.bar(
            t,
            [s.throttled for s in report.timeline],
            bottom=[s.admitted for s in report.timeline],
            width=1.0,
            align="edge",
            color="tab:red",
            label="throttled (429)",
        )
        paced = [(s.t + 1, s.paced) for s in report.timeline if s.paced is not None]
        if paced:
            ax.step(*zip(*paced, strict=True), where="pre", color="black", label="client pace")
        if report.limit is not None:
            ax.axhline(report.limit, color="tab:green", linestyle="--", label="emulator limit")
        peak = max([s.admitted + s.throttled for s in report.timeline] + [report.limit or 0])
        ax.set_ylim(0, 1.3 * max(peak, *(r for _, r in paced)) if paced else 1.3 * peak)
        ax.set_title(title)
        ax.set_xlabel("seconds since the first call")
        ax.set_ylabel("requests/s")
        ax.legend(loc="upper right", fontsize="small", ncols=4)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def plot_rss(path: Path, points: Sequence[tuple[int, float]]) -> bool:
    """Peak RSS (MiB) of ``bulkresign run`` against the number of IDs in its input."""
    plt = _pyplot()
    if plt is None:
        return False
    fig, ax = plt.subplots(figsize=(6, 3.5))
    xs, ys = zip(*points, strict=True)
    ax.plot(xs, ys, marker="o")
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("IDs in the input")
    ax.set_ylabel("peak RSS (MiB)")
    ax.set_title("bulkresign run: peak RSS against input size")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def plot_resume(
    path: Path, calls: Times, resigns: Times, *, started: float, killed: float, restarted: float
) -> bool:
    """Calls per second across a kill and a restart, and the restart's first seconds close up."""
    plt = _pyplot()
    if plt is None:
        return False
    fig, (whole, close) = plt.subplots(2, 1, figsize=(9, 6.4))
    seconds = np.bincount((calls[calls >= started] - started).astype(np.int64))
    whole.bar(np.arange(len(seconds)), seconds, width=1.0, align="edge", label="calls")
    for at, label, colour in ((killed, "SIGKILL", "tab:red"), (restarted, "restart", "black")):
        whole.axvline(at - started, color=colour, linestyle="--", label=label)
    whole.set_title("both runs: API calls per second")
    whole.set_xlabel("seconds since the first run started")
    whole.set_ylabel("calls/s")
    whole.legend(loc="lower left", fontsize="small")
    step, span = 0.1, RESTART_SPAN
    edges = np.arange(0.0, span + step, step)
    for times, label in ((calls, "all calls (read-backs too)"), (resigns, "resign calls")):
        counts, _ = np.histogram(times - restarted, bins=edges)
        close.step(edges[1:], counts / step, where="pre", label=label)
    close.set_title(f"the restart's first {span:g} s, per {step:g} s")
    close.set_xlabel("seconds since the restart was spawned")
    close.set_ylabel("calls/s")
    close.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def plot_bars(
    path: Path,
    title: str,
    unit: str,
    runs: Sequence[tuple[str, Sequence[float]]],
    *,
    target: float | None = None,
) -> bool:
    """One bar a label at the median of its runs, every run a dot on it, and the target line."""
    plt = _pyplot()
    if plt is None:
        return False
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.8 * len(runs)))
    y = np.arange(len(runs))
    ax.barh(y, [float(np.median(v)) for _, v in runs], color="tab:blue", label="median")
    for i, (_, values) in enumerate(runs):
        ax.plot(values, [i] * len(values), "o", color="black", markersize=4)
    if target is not None:
        ax.axvline(target, color="tab:green", linestyle="--", label="target")
    ax.set_yticks(y, [label for label, _ in runs], fontsize="small")
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
