"""The predictive floor: forecast demand, gate it on history and on the forecaster's own recent
accuracy, and turn the peak of the forecast window into replicas.

At ``now`` the floor covers the highest forecast demand in [now, now + lead + startup], so the floor
for any instant t is in place by t - lead - startup and pods started then are ready by t - lead."""

from __future__ import annotations

import dataclasses
import math
import operator
import typing
from datetime import timedelta

import numpy as np

from walletplatform.forecast import base, series
from walletplatform.models import common, scaling

REPLAY_ORIGINS = 48
REPLAY_SPACING = 3600.0


class Forecast(typing.NamedTuple):
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


@dataclasses.dataclass(frozen=True, slots=True)
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
    forecaster: base.Forecaster,
    history: series.Series,
    seconds: float,
    known: tuple[Replay, ...] = (),
    unscored: frozenset[float] = frozenset(),
) -> tuple[tuple[Replay, ...], frozenset[float]]:
    """Replay the forecaster at recent origins, each seeing only the history before it, for windows of
    ``seconds`` (the window a floor covers). Returns the replays and the origins with too little data
    on either side to score (a gap in history). ``known`` replays and ``unscored`` origins of the same
    forecaster and window (from the previous refresh) are kept, not recomputed: a refresh replays at
    most the origins that are new. An unscored origin stays unscored: the demand after it has passed,
    and a later refresh's history reaches no further back before it."""
    before = {r.origin: r for r in known}
    replays, skipped = [], set()
    width = history.steps(seconds)
    for origin in replay_origins(history, seconds):
        if origin in before:
            replays.append(before[origin])
            continue
        if origin in unscored:
            skipped.add(origin)
            continue
        past = history.until(origin)
        if len(past) == 0:
            skipped.add(origin)
            continue
        predicted = forecaster.forecast(past, width)
        actual = history.values[len(past) : len(past) + width]
        ok = ~np.isnan(predicted) & ~np.isnan(actual)
        if np.count_nonzero(ok) >= max(1, width // 2):
            replays.append(Replay(origin, float(np.max(predicted[ok])), float(np.max(actual[ok]))))
        else:
            skipped.add(origin)
    return tuple(replays), frozenset(skipped)


@dataclasses.dataclass(frozen=True, slots=True)
class Accuracy:
    """The replayed floors against the floors demand needed, in replicas above the static minimum.

    ``excess``: replicas the forecast floors would have held beyond need, as a fraction of need: the
    waste a wrong forecast causes, and what ``maxErrorRatio`` bounds. ``shortfall``: replicas short of
    need, as a fraction of need; reported, not gated, because a floor below need leaves the HPA to
    react exactly as it would without one. Errors the static minimum absorbs cost nothing and count
    for nothing, so a quiet service's noisy low traffic does not switch its forecasts off."""

    excess: float
    shortfall: float


def floors_for(demand: series.Array, spec: scaling.Predictive, static_min: int) -> series.Array:
    """``replicas_for`` of every element, at least ``static_min``: the same arithmetic, vectorised."""
    raw = np.ceil(demand * (1 + spec.headroom) / (spec.capacity_per_replica * spec.target_utilization) - 1e-9)
    return np.maximum(static_min, np.where(demand > 0, raw, 0.0))


def accuracy(replays: tuple[Replay, ...], spec: scaling.Predictive, static_min: int) -> Accuracy | None:
    """How the floors of ``replays`` compare with need; None when there is nothing to compare."""
    predicted = floors_for(np.array([r.predicted for r in replays], dtype=np.float64), spec, static_min)
    needed = floors_for(np.array([r.actual for r in replays], dtype=np.float64), spec, static_min)
    total = float(np.sum(needed))
    if total <= 0:
        return None
    return Accuracy(
        float(np.sum(np.maximum(predicted - needed, 0))) / total,
        float(np.sum(np.maximum(needed - predicted, 0))) / total,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Outlook:
    """A forecast made once per refresh from one history query, sliced by every decision until the next."""

    origin: float
    step: float
    values: series.Array
    covered: float
    replays: tuple[Replay, ...]
    forecaster: str
    window: float
    unscored: frozenset[float] = frozenset()  # recent origins a gap left without a replay
    # What every decision until the next refresh asks again of the same outlook, computed once.
    _memo: dict[object, object] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def accuracy(self, spec: scaling.Predictive, static_min: int) -> Accuracy | None:
        """``accuracy`` of this outlook's replays, once per sizing."""
        key = ("accuracy", spec.capacity_per_replica, spec.target_utilization, spec.headroom, static_min)
        if key not in self._memo:
            self._memo[key] = accuracy(self.replays, spec, static_min)
        return self._memo[key]  # type: ignore[return-value]

    def peak(self, first: int, width: int) -> tuple[int, float] | None:
        """The first highest forecast of ``values[first:first + width]`` as (index, value), None when that
        slice is empty or all NaN."""
        if "values" not in self._memo:
            self._memo["values"] = self.values.tolist()  # a few dozen values, read by every decision
        values: list[float] = self._memo["values"]  # type: ignore[assignment]
        best: tuple[int, float] | None = None
        for index in range(first, min(first + width, len(values))):
            value = values[index]
            if not math.isnan(value) and (best is None or value > best[1]):
                best = (index, value)
        return best


def build_outlook(
    spec: scaling.Predictive,
    forecaster: base.Forecaster,
    history: series.Series,
    now: float,
    previous: Outlook | None = None,
) -> Outlook:
    """Forecast from ``now`` far enough for every decision until the next refresh. The replays of the
    ``previous`` outlook (and the origins it could not score) are reused when it came from the same
    forecaster, step and window."""
    window = (spec.lead_time + spec.startup).total_seconds()
    values = forecast_window(forecaster, history, now, window + spec.refresh.total_seconds())
    known: tuple[Replay, ...] = ()
    unscored: frozenset[float] = frozenset()
    if previous is not None and (previous.forecaster, previous.step, previous.window) == (
        forecaster.name,
        history.step,
        window,
    ):
        known, unscored = previous.replays, previous.unscored
    replays, unscored = replay(forecaster, history, window, known, unscored)
    outlook = Outlook(now, history.step, values, history.covered(), replays, forecaster.name, window, unscored)
    if previous is not None and len(replays) == len(known) and all(map(operator.is_, replays, known)):
        # The same replays (no origin is new since the previous refresh): the same accuracy per sizing.
        outlook._memo.update((k, v) for k, v in previous._memo.items() if isinstance(k, tuple) and k[0] == "accuracy")
    return outlook


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
    found = outlook.peak(first, max(1, round(window / outlook.step)))
    if found is None:
        return Forecast(0, False, f"{outlook.forecaster} has no forecast for the next {window:.0f}s")
    index, peak = found
    peak_at = outlook.origin + index * outlook.step
    floor = replicas_for(peak, spec)
    scored = outlook.accuracy(spec, static_min)
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
