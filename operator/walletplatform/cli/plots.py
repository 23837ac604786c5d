"""The PNGs of ``walletctl backtest --plot``: a replay an on-call engineer can read, and the frontier.

The replay: dates in the policy's time zone; an overview of the whole trace (hourly peaks, so months
stay legible) above panels zoomed on the windows with the most saturated minutes of the chosen
strategies; per strategy its ready capacity and its floor (as capacity), and a mark under the axis
at each saturated minute. The frontier: saturated minutes against replica-hours per strategy, every
swept point faint, each strategy's front as a line, the team's current operating point ringed."""

from __future__ import annotations

import importlib
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

COLOURS = {"reactive": "tab:red", "schedule": "tab:green", "predictive": "tab:blue", "naive": "tab:orange"}
WORST_WINDOWS = 3
WINDOW_MINUTES = 6 * 60


def _pyplot() -> Any:
    import matplotlib  # noqa: PLC0415 - optional, only for --plot

    matplotlib.use("Agg")
    from matplotlib import pyplot  # noqa: PLC0415

    return pyplot


def worst_windows(saturated: np.ndarray, count: int = WORST_WINDOWS, width: int = WINDOW_MINUTES) -> list[int]:
    """Start indexes of up to ``count`` non-overlapping windows of ``width`` minutes holding the most
    saturated minutes (of any chosen strategy), most first; none when nothing saturated."""
    if not np.any(saturated):
        return []
    sums = np.convolve(saturated.astype(float), np.ones(width), mode="valid") if len(saturated) >= width else None
    if sums is None:
        return [0]
    starts: list[int] = []
    sums = sums.copy()
    while len(starts) < count and sums.max() > 0:
        best = np.flatnonzero(sums == sums.max())
        start = int(best[len(best) // 2])  # of equally bad windows the middle one: the cluster is centred
        starts.append(start)
        sums[max(0, start - width + 1) : start + width] = 0  # no overlap with a chosen window
    return starts


def replay(path: str, curves: dict[str, Any], strategies: list[str], capacity: float, zone: ZoneInfo) -> None:
    pyplot = _pyplot()
    mdates: Any = importlib.import_module("matplotlib.dates")

    times = np.array(curves["times"])
    demand = np.array(curves["demand"])
    ready = {name: np.array(curves["ready_capacity"][name]) for name in strategies}
    floors = {name: np.array(curves["floors"][name]) * capacity for name in strategies if name in curves["floors"]}
    saturated = {name: demand > ready[name] for name in strategies}
    anywhere = np.logical_or.reduce(list(saturated.values()))
    windows = worst_windows(anywhere)
    stamps = np.array([datetime.fromtimestamp(t, zone) for t in times])

    figure = pyplot.figure(figsize=(15, 4.2 + 3.2 * len(windows)), constrained_layout=True)
    grid = figure.add_gridspec(1 + len(windows), 1)
    overview = figure.add_subplot(grid[0])
    bucket = 60 if len(times) <= 30 * 1440 else 1440  # hours up to a month, then days: always legible
    buckets = len(times) // bucket
    if buckets >= 48:  # per bucket its demand peak, and each strategy's ready capacity at that minute
        cut = buckets * bucket
        peak = np.nanargmax(np.nan_to_num(demand[:cut], nan=-np.inf).reshape(buckets, bucket), axis=1)
        at = np.arange(buckets) * bucket + peak
        unit = "hour" if bucket == 60 else "day"
        overview.plot(stamps[at], demand[at], color="black", lw=0.7, label=f"demand (each {unit}'s peak)")
        for name in strategies:
            label = f"{name} ready capacity at that peak"
            overview.plot(stamps[at], ready[name][at], color=COLOURS[name], lw=0.7, alpha=0.8, label=label)
    else:
        overview.plot(stamps, demand, color="black", lw=0.6, label="demand")
        for name in strategies:
            overview.plot(stamps, ready[name], color=COLOURS[name], lw=0.6, alpha=0.8, label=f"{name} ready capacity")
    _mark_saturated(overview, stamps, saturated)
    for start in windows:
        overview.axvspan(
            stamps[start], stamps[min(len(stamps) - 1, start + WINDOW_MINUTES - 1)], color="grey", alpha=0.15
        )
    counts = ", ".join(f"{name} {int(np.count_nonzero(hit))}" for name, hit in saturated.items())
    overview.set_title(f"Whole trace ({zone.key}); saturated minutes: {counts}; shaded: the windows below")
    overview.legend(loc="upper left", fontsize=8, ncols=2)
    overview.xaxis.set_major_formatter(mdates.ConciseDateFormatter(overview.xaxis.get_major_locator(), tz=zone))

    for row, start in enumerate(windows, start=1):
        axes = figure.add_subplot(grid[row])
        part = slice(start, start + WINDOW_MINUTES)
        axes.plot(stamps[part], demand[part], color="black", lw=1.0, label="demand")
        for name in strategies:
            axes.step(stamps[part], ready[name][part], where="post", color=COLOURS[name], lw=1.0, label=f"{name} ready")
            if name in floors:
                axes.step(
                    stamps[part],
                    floors[name][part],
                    where="post",
                    color=COLOURS[name],
                    lw=0.8,
                    ls="--",
                    label=f"{name} floor",
                )
        _mark_saturated(axes, stamps[part], {name: hit[part] for name, hit in saturated.items()})
        hits = ", ".join(f"{name} {int(np.count_nonzero(hit[part]))}" for name, hit in saturated.items())
        axes.set_title(f"Worst window {row}: {stamps[start]:%Y-%m-%d %H:%M %Z}, saturated minutes: {hits}")
        axes.xaxis.set_major_formatter(mdates.DateFormatter("%a %d %b %H:%M", tz=zone))
        axes.legend(loc="upper left", fontsize=8, ncols=3)
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def _mark_saturated(axes: Any, stamps: np.ndarray, saturated: dict[str, np.ndarray]) -> None:
    """A tick under the curves at each saturated minute, one row per strategy."""
    low, high = axes.get_ylim()
    for row, (name, hit) in enumerate(saturated.items()):
        if np.any(hit):
            level = low - (row + 1) * 0.03 * (high - low)
            axes.plot(
                stamps[hit],
                np.full(np.count_nonzero(hit), level),
                "|",
                color=COLOURS[name],
                ms=8,
                label=f"{name} saturated",
            )
    axes.set_ylim(low - (len(saturated) + 1) * 0.03 * (high - low), high)


def frontier(path: str, result: dict[str, Any]) -> None:
    pyplot = _pyplot()
    figure, axes = pyplot.subplots(figsize=(10, 6.5), constrained_layout=True)
    for name, front in result["fronts"].items():
        points = [p for p in result["points"] if p["strategy"] == name]
        axes.scatter(
            [p["replica_hours"] for p in points],
            [p["saturated_minutes"] for p in points],
            color=COLOURS[name],
            alpha=0.25,
            s=18,
        )
        axes.plot(
            [p["replica_hours"] for p in front],
            [p["saturated_minutes"] for p in front],
            "o-",
            color=COLOURS[name],
            label=f"{name} (front)",
            ms=4,
        )
        for p in front:
            text = f"t{p['target']:g}" + ("" if p["headroom"] is None else f" h{p['headroom']:g}")
            axes.annotate(
                text,
                (p["replica_hours"], p["saturated_minutes"]),
                fontsize=6,
                xytext=(3, 3),
                textcoords="offset points",
                color=COLOURS[name],
            )
    reference = result["at_reactive_current"]["reference"]
    axes.scatter(
        [reference["replica_hours"]],
        [reference["saturated_minutes"]],
        s=160,
        facecolors="none",
        edgecolors="black",
        label=f"reactive at the current target {reference['target']:g}",
    )
    axes.axhline(reference["saturated_minutes"], color="black", lw=0.5, ls=":")
    axes.set_xlabel("replica-hours (cost)")
    axes.set_ylabel("saturated minutes (risk)")
    axes.set_title("Risk against cost: lower left is better; each line is a strategy's best points")
    axes.legend(fontsize=8)
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
