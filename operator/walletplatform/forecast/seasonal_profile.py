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

    def _level_and_noise(self, history: series.Series, targets: np.ndarray, q: float) -> series.Array:
        """Per target: the median over past periods of their fitted line at the target's phase, plus the
        ``q`` quantile of all samples' deviations from their period's line."""
        samples = self._samples(history, targets)
        ok = ~np.isnan(samples)
        offset = np.broadcast_to((np.arange(samples.shape[1]) - samples.shape[1] // 2)[None, :, None], samples.shape)
        count = np.maximum(np.count_nonzero(ok, axis=1, keepdims=True), 1)
        mean_offset = np.sum(np.where(ok, offset, 0), axis=1, keepdims=True) / count
        mean_value = np.sum(np.where(ok, samples, 0.0), axis=1, keepdims=True) / count
        centred = np.where(ok, offset - mean_offset, 0.0)
        spread = np.sum(centred * centred, axis=1, keepdims=True)
        slope = np.sum(centred * np.where(ok, samples - mean_value, 0.0), axis=1, keepdims=True) / np.where(
            spread > 0, spread, np.inf
        )  # one sample, or none: a flat line through it
        at_phase = np.where(np.any(ok, axis=1, keepdims=True), mean_value - slope * mean_offset, np.nan)[:, 0, :]
        noise = (samples - (mean_value + slope * (offset - mean_offset))).reshape(-1, samples.shape[2])
        return np.maximum(0.0, series.column_quantiles(at_phase, 0.5) + series.column_quantiles(noise, q))

    def forecast(self, history: series.Series, horizon: int) -> series.Array:
        n = len(history)
        peak = self._level_and_noise(history, n + np.arange(horizon), self.quantile)
        window = min(n, history.steps(self.level_window))
        recent = np.arange(n - window, n)
        expected = self._level_and_noise(history, recent, 0.5)
        actual = history.values[recent]
        both = ~np.isnan(expected) & ~np.isnan(actual)
        ratio = 1.0
        if np.count_nonzero(both) >= max(1, window // 3) and np.sum(expected[both]) > 0:
            ratio = float(np.clip(np.sum(actual[both]) / np.sum(expected[both]), *self.level_clamp))
        return peak * ratio
