"""The predictive floor: forecast demand, gate it on history and on the forecaster's own recent
accuracy, and turn the peak of the forecast window into replicas.

At ``now`` the floor covers the highest forecast demand in [now, now + lead + startup], so the floor
for any instant t is in place by t - lead - startup and pods started then are ready by t - lead."""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta

import numpy as np

from walletplatform.forecast import base, series
from walletplatform.models import common, scaling

REPLAY_ORIGINS = 48
REPLAY_SPACING = 3600.0


@dataclasses.dataclass(frozen=True)
class Forecast:
    """What the forecaster said and whether it is used."""

    floor: int
    applied: bool
    reason: str
    peak: float | None = None
    peak_at: float | None = None
    error_ratio: float | None = None
    shortfall_ratio: float | None = None


def replicas_for(demand: float, spec: scaling.Predictive) -> int:
    """Replicas that serve ``demand`` at the target utilisation with headroom."""
    if demand <= 0:
        return 0
    return math.ceil(demand * (1 + spec.headroom) / (spec.capacity_per_replica * spec.target_utilization) - 1e-9)


def forecast_window(forecaster: base.Forecaster, history: series.Series, start: float, seconds: float) -> series.Array:
    """Forecast the ``seconds`` after ``start`` (which may lie after the end of history)."""
    gap = max(0, round((start - history.end) / history.step))
    steps = history.steps(seconds)
    return forecaster.forecast(history, gap + steps)[gap:]


@dataclasses.dataclass(frozen=True)
class Replay:
    """At one recent origin: the forecast window's peak, made from the history before the origin, and
    the peak demand that came."""

    origin: float
    predicted: float
    actual: float


def replay_origins(history: series.Series, seconds: float) -> list[float]:
    """The last ``REPLAY_ORIGINS`` whole hours whose window of ``seconds`` has passed: two days of origins,
    on the clock so that later refreshes meet the same ones again."""
    last = (history.end - history.steps(seconds) * history.step) // REPLAY_SPACING * REPLAY_SPACING
    return [last - k * REPLAY_SPACING for k in range(REPLAY_ORIGINS)]


def replay(
    forecaster: base.Forecaster, history: series.Series, seconds: float, known: tuple[Replay, ...] = ()
) -> tuple[Replay, ...]:
    """Replay the forecaster at recent origins, each seeing only the history before it, for windows of
    ``seconds`` (the window a floor covers). ``known`` replays of the same forecaster and window (from
    the previous refresh) are kept, not recomputed: a refresh replays at most the origins that are new."""
    before = {r.origin: r for r in known}
    replays = []
    width = history.steps(seconds)
    for origin in replay_origins(history, seconds):
        if origin in before:
            replays.append(before[origin])
            continue
        past = history.until(origin)
        if len(past) == 0:
            continue
        predicted = forecaster.forecast(past, width)
        actual = history.values[len(past) : len(past) + width]
        ok = ~np.isnan(predicted) & ~np.isnan(actual)
        if np.count_nonzero(ok) >= max(1, width // 2):
            replays.append(Replay(origin, float(np.max(predicted[ok])), float(np.max(actual[ok]))))
    return tuple(replays)


@dataclasses.dataclass(frozen=True)
class Accuracy:
    """The replayed floors against the floors demand needed, in replicas above the static minimum.

    ``excess``: replicas the forecast floors would have held beyond need, as a fraction of need: the
    waste a wrong forecast causes, and what ``maxErrorRatio`` bounds. ``shortfall``: replicas short of
    need, as a fraction of need; reported, not gated, because a floor below need leaves the HPA to
    react exactly as it would without one. Errors the static minimum absorbs cost nothing and count
    for nothing, so a quiet service's noisy low traffic does not switch its forecasts off."""

    excess: float
    shortfall: float


def accuracy(replays: tuple[Replay, ...], spec: scaling.Predictive, static_min: int) -> Accuracy | None:
    """How the floors of ``replays`` compare with need; None when there is nothing to compare."""
    predicted = np.array([max(static_min, replicas_for(r.predicted, spec)) for r in replays], dtype=np.float64)
    needed = np.array([max(static_min, replicas_for(r.actual, spec)) for r in replays], dtype=np.float64)
    total = float(np.sum(needed))
    if total <= 0:
        return None
    return Accuracy(
        float(np.sum(np.maximum(predicted - needed, 0))) / total,
        float(np.sum(np.maximum(needed - predicted, 0))) / total,
    )


@dataclasses.dataclass(frozen=True)
class Outlook:
    """A forecast made once per refresh from one history query, sliced by every decision until the next."""

    origin: float
    step: float
    values: series.Array
    covered: float
    replays: tuple[Replay, ...]
    forecaster: str
    window: float


def build_outlook(
    spec: scaling.Predictive,
    forecaster: base.Forecaster,
    history: series.Series,
    now: float,
    previous: Outlook | None = None,
) -> Outlook:
    """Forecast from ``now`` far enough for every decision until the next refresh. The replays of the
    ``previous`` outlook are reused when it came from the same forecaster, step and window."""
    window = (spec.lead_time + spec.startup).total_seconds()
    values = forecast_window(forecaster, history, now, window + spec.refresh.total_seconds())
    known: tuple[Replay, ...] = ()
    if previous is not None and (previous.forecaster, previous.step, previous.window) == (
        forecaster.name,
        history.step,
        window,
    ):
        known = previous.replays
    replays = replay(forecaster, history, window, known)
    return Outlook(now, history.step, values, history.covered(), replays, forecaster.name, window)


def forecast_floor(spec: scaling.Predictive, outlook: Outlook, now: float, static_min: int = 0) -> Forecast:
    """The predictive floor at ``now`` (epoch seconds) from the current outlook, or why it is not applied;
    ``static_min`` is the service's floor without a forecast, below which errors cost nothing."""
    if outlook.covered < spec.min_history.total_seconds():
        have = common.format_duration(timedelta(seconds=int(outlook.covered)))
        return Forecast(
            0, False, f"only {have} of history; the policy needs {common.format_duration(spec.min_history)}"
        )
    window = (spec.lead_time + spec.startup).total_seconds()
    first = max(0, int((now - outlook.origin) // outlook.step))
    predicted = outlook.values[first : first + max(1, round(window / outlook.step))]
    if predicted.size == 0 or np.all(np.isnan(predicted)):
        return Forecast(0, False, f"{outlook.forecaster} has no forecast for the next {window:.0f}s")
    index = int(np.nanargmax(predicted))
    peak = float(predicted[index])
    peak_at = outlook.origin + (first + index) * outlook.step
    floor = replicas_for(peak, spec)
    scored = accuracy(outlook.replays, spec, static_min)
    if scored is None:
        return Forecast(floor, False, "accuracy unknown: no recent demand to replay", peak, peak_at)
    if scored.excess > spec.max_error_ratio:
        reason = (
            f"floors replayed at {len(outlook.replays)} recent origins held {scored.excess:.2f} more replicas"
            f" than needed, above maxErrorRatio {spec.max_error_ratio:g}"
        )
        return Forecast(floor, False, reason, peak, peak_at, scored.excess, scored.shortfall)
    return Forecast(
        floor, True, f"peak {peak:.4g} expected needs {floor}", peak, peak_at, scored.excess, scored.shortfall
    )
