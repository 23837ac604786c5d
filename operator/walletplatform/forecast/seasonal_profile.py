"""Robust seasonal profile with quantiles: the default forecaster.

For each future instant it gathers the raw samples at the same time of week on recent weeks (and, while
fewer than ``weeks`` weeks of history exist, at the same time of day on recent days), each within
+-``spread``, and forecasts their ``quantile``: the
level demand's short peaks reach at that time, not its mean, because a floor must cover the peak of
its window. It then scales by the current level: recent demand over what the profile's median
expected for the last ``level_window``, so a busier-than-usual day lifts the forecast within minutes
while the profile's shape still says a ramp is coming. NaN gaps are skipped, never read as zero."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import numpy.typing as npt

from walletplatform.forecast import series


@dataclasses.dataclass(frozen=True)
class SeasonalProfile:
    name: str = "seasonal-profile"
    weeks: int = 2
    days: int = 3
    spread: float = 900.0
    quantile: float = 0.75
    level_window: float = 1800.0
    level_clamp: tuple[float, float] = (0.67, 1.5)

    def _samples(self, history: series.Series, targets: np.ndarray) -> series.Array:
        """Matrix (samples x targets) of same-phase raw values from past days and weeks."""
        # Too few weeks: borrow recent days, at the price of mixing weekdays with weekends.
        borrow = len(history) * history.step < self.weeks * series.WEEK
        offsets = self._offsets(history.step, borrow)
        # Built one target per row and returned transposed: each target's samples are contiguous, which
        # is the axis the quantiles sort along.
        source = targets[:, None] - offsets[None, :]
        if len(history) == 0:
            return np.full(source.shape, np.nan).T
        ok = (source >= 0) & (source < len(history))
        samples: series.Array = np.where(ok, history.values.take(source, mode="clip"), np.nan)
        return samples.T

    @functools.lru_cache(maxsize=16)  # noqa: B019 - a few (step, borrow) pairs of a frozen, hashable forecaster
    def _offsets(self, step: float, borrow_days: bool) -> npt.NDArray[np.int64]:
        """How many samples before each target its same-phase samples lie: every lag +- spread."""
        lags = [series.steps(k * series.WEEK, step) for k in range(1, self.weeks + 1)]
        if borrow_days:
            lags += [series.steps(k * series.DAY, step) for k in range(1, self.days + 1)]
        half = round(self.spread / step)
        offsets: npt.NDArray[np.int64] = (np.array(lags)[:, None] - np.arange(-half, half + 1)[None, :]).ravel()
        return offsets

    def forecast(self, history: series.Series, horizon: int) -> series.Array:
        n = len(history)
        window = min(n, history.steps(self.level_window))
        recent = np.arange(n - window, n)
        # The forecast's columns and the recent ones the level compares with, in one matrix and one sort.
        targets = np.concatenate([n + np.arange(horizon), recent])
        quantiles = np.concatenate([np.full(horizon, self.quantile), np.full(window, 0.5)])
        profile = series.column_quantiles(self._samples(history, targets), quantiles)
        peak, expected = profile[:horizon], profile[horizon:]
        actual = history.values[recent]
        both = ~np.isnan(expected) & ~np.isnan(actual)
        ratio = 1.0
        if np.count_nonzero(both) >= max(1, window // 3):
            usual = float(np.sum(expected[both]))
            if usual > 0:
                low, high = self.level_clamp
                ratio = min(max(float(np.sum(actual[both])) / usual, low), high)
        return peak * ratio
