"""The benchmarks' PNGs. matplotlib is the optional ``bench`` extra: without it, no picture."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from bulkresign.bench import RunReport

__all__ = ["plot_rss", "plot_timelines"]


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
