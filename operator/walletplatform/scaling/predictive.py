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

REPLAY_ORIGINS = 6
REPLAY_SPACING = 4 * 3600.0


@dataclasses.dataclass(frozen=True)
class Forecast:
    """What the forecaster said and whether it is used."""

    floor: int
    applied: bool
    reason: str
    peak: float | None = None
    peak_at: float | None = None
    error_ratio: float | None = None


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


def replay_error(forecaster: base.Forecaster, history: series.Series, seconds: float) -> float | None:
    """Weighted absolute error of the forecast window peak against the actual peak, at recent origins,
    as a ratio of demand: the quantity the floor is made of.

    Replays the last day: at each origin the forecaster sees only the history before it."""
    numerator = denominator = 0.0
    width = history.steps(seconds)
    for k in range(1, REPLAY_ORIGINS + 1):
        origin = history.end - k * REPLAY_SPACING - width * history.step
        past = history.until(origin)
        if len(past) == 0:
            continue
        predicted = forecaster.forecast(past, width)
        actual = history.values[len(past) : len(past) + width]
        ok = ~np.isnan(predicted) & ~np.isnan(actual)
        if np.count_nonzero(ok) < max(1, width // 2):
            continue
        numerator += abs(float(np.max(predicted[ok])) - float(np.max(actual[ok])))
        denominator += float(np.max(actual[ok]))
    if denominator <= 0:
        return None
    return numerator / denominator


@dataclasses.dataclass(frozen=True)
class Outlook:
    """A forecast made once per refresh from one history query, sliced by every decision until the next."""

    origin: float
    step: float
    values: series.Array
    covered: float
    error_ratio: float | None
    forecaster: str


def build_outlook(spec: scaling.Predictive, forecaster: base.Forecaster, history: series.Series, now: float) -> Outlook:
    """Forecast from ``now`` far enough for every decision until the next refresh."""
    window = (spec.lead_time + spec.startup).total_seconds()
    values = forecast_window(forecaster, history, now, window + spec.refresh.total_seconds())
    return Outlook(
        now, history.step, values, history.covered(), replay_error(forecaster, history, window), forecaster.name
    )


def forecast_floor(spec: scaling.Predictive, outlook: Outlook, now: float) -> Forecast:
    """The predictive floor at ``now`` (epoch seconds) from the current outlook, or why it is not applied."""
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
    error = outlook.error_ratio
    if error is None:
        return Forecast(floor, False, "accuracy unknown: no recent demand to replay", peak, peak_at)
    if error > spec.max_error_ratio:
        return Forecast(
            floor,
            False,
            f"recent error {error:.2f} is above maxErrorRatio {spec.max_error_ratio:g}",
            peak,
            peak_at,
            error,
        )
    return Forecast(floor, True, f"peak {peak:.4g} expected needs {floor}", peak, peak_at, error)
