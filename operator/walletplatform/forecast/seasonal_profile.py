"""Robust seasonal profile with quantiles: the default forecaster.

For each future instant it gathers the raw samples at the same time of week on recent weeks (and, while
fewer than ``weeks`` weeks of history exist, at the same time of day on recent days), each within
+-``spread``. Through each past week's (or day's) samples it fits a straight line: the line read at the
instant itself is that week's level there, and the samples' deviations from their lines are the noise.
The forecast is the median level plus the noise's ``quantile``: the level demand's short peaks reach at
that time, not its mean, because a floor must cover the peak of its window. A raw quantile of the
samples would read a ramp inside the spread as noise and lead every rising ramp (lag every falling one)
by about half the spread, holding replicas nobody needs yet.

It then scales by the current level: recent demand over what the profile's median expected for the last
``level_window``, so a busier-than-usual day lifts the forecast within minutes while the profile's shape
still says a ramp is coming. NaN gaps are skipped, never read as zero."""

from __future__ import annotations

import dataclasses

import numpy as np

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
        """Array (past period x offset in the spread x target) of same-phase raw values."""
        lags = [history.steps(k * series.WEEK) for k in range(1, self.weeks + 1)]
        if len(history) * history.step < self.weeks * series.WEEK:
            # Too few weeks: borrow recent days, at the price of mixing weekdays with weekends.
            lags += [history.steps(k * series.DAY) for k in range(1, self.days + 1)]
        half = round(self.spread / history.step)
        source = targets[None, None, :] - np.array(lags)[:, None, None] + np.arange(-half, half + 1)[None, :, None]
        ok = (source >= 0) & (source < len(history))
        samples = np.full(source.shape, np.nan)
        samples[ok] = history.values[source[ok]]
        return samples

    def _level_and_noise(self, history: series.Series, targets: np.ndarray, q: series.Array) -> series.Array:
        """Per target: the median over past periods of their fitted line at the target's phase, plus the
        ``q`` (per target) quantile of all samples' deviations from their period's line."""
        samples = self._samples(history, targets)
        ok = ~np.isnan(samples)
        value, weight = np.where(ok, samples, 0.0), ok.astype(np.float64)
        offset = np.arange(samples.shape[1], dtype=np.float64) - samples.shape[1] // 2
        count = weight.sum(axis=1)  # period x target, as are the sums below
        sum_offset, sum_value = np.tensordot(offset, weight, axes=(0, 1)), value.sum(axis=1)
        safe = np.maximum(count, 1)
        variance = np.tensordot(offset * offset, weight, axes=(0, 1)) - sum_offset * sum_offset / safe
        covariance = np.tensordot(offset, value, axes=(0, 1)) - sum_offset * sum_value / safe
        # One sample, or samples at one offset: a flat line through their mean.
        slope = np.where(variance > 1e-9, covariance / np.where(variance > 1e-9, variance, 1.0), 0.0)
        at_phase = np.where(count > 0, (sum_value - slope * sum_offset) / safe, np.nan)
        noise = samples - at_phase[:, None, :] - slope[:, None, :] * offset[None, :, None]
        level = series.column_quantiles(at_phase, 0.5)
        return np.maximum(0.0, level + series.column_quantiles(noise.reshape(-1, samples.shape[2]), q))

    def forecast(self, history: series.Series, horizon: int) -> series.Array:
        n = len(history)
        window = min(n, history.steps(self.level_window))
        recent = np.arange(n - window, n)
        # One pass for both: what the profile expected of the recent window (median) and the forecast.
        targets = np.concatenate((recent, n + np.arange(horizon)))
        quantiles = np.concatenate((np.full(window, 0.5), np.full(horizon, self.quantile)))
        both_parts = self._level_and_noise(history, targets, quantiles)
        expected, peak = both_parts[:window], both_parts[window:]
        actual = history.values[recent]
        both = ~np.isnan(expected) & ~np.isnan(actual)
        ratio = 1.0
        if np.count_nonzero(both) >= max(1, window // 3) and np.sum(expected[both]) > 0:
            ratio = float(np.clip(np.sum(actual[both]) / np.sum(expected[both]), *self.level_clamp))
        return peak * ratio
