"""Additive Holt-Winters (level, trend, daily season) on a series aggregated to at least 5-minute
buckets, so a 14-day, 1-minute history costs a few thousand updates. Fixed smoothing constants:
fitting them per decision costs more than it gains on short horizons (see the backtests)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from walletplatform.forecast import series


@dataclasses.dataclass(frozen=True)
class HoltWinters:
    name: str = "holt-winters"
    alpha: float = 0.25
    beta: float = 0.005
    gamma: float = 0.15
    bucket: float = 300.0

    def forecast(self, history: series.Series, horizon: int) -> series.Array:
        factor = max(1, round(self.bucket / history.step))
        n = len(history) - len(history) % factor
        blocks = history.values[len(history) - n :].reshape(-1, factor)
        counts = np.count_nonzero(~np.isnan(blocks), axis=1)
        buckets = np.where(counts > 0, np.nansum(blocks, axis=1) / np.maximum(counts, 1), np.nan)
        period = max(2, round(series.DAY / (history.step * factor)))
        # Start at the first day (whole periods, so season slots keep their phase) with data in at least
        # 90% of its buckets: a season started from a half-empty day takes weeks to recover.
        whole = len(buckets) // period * period
        filled = np.count_nonzero(counts[:whole].reshape(-1, period), axis=1) >= 0.9 * period
        start = int(np.argmax(filled)) * period if np.any(filled) else len(buckets)
        if len(buckets) - start < 2 * period:
            return np.full(horizon, np.nan)
        first = buckets[start : start + period]
        level = float(np.nanmean(first))
        # Plain floats in the loop: numpy scalar arithmetic is several times slower per update.
        season: list[float] = np.where(np.isnan(first), 0.0, first - level).tolist()
        trend = 0.0
        for i, y in enumerate(buckets[start + period :].tolist(), start=start + period):
            s = season[i % period]
            if math.isnan(y):
                level += trend
                continue
            previous = level
            level = self.alpha * (y - s) + (1 - self.alpha) * (level + trend)
            trend = self.beta * (level - previous) + (1 - self.beta) * trend
            season[i % period] = self.gamma * (y - level) + (1 - self.gamma) * s
        ahead = np.arange(horizon) // factor + 1
        idx = (len(buckets) + ahead - 1) % period
        result: series.Array = np.maximum(0.0, level + ahead * trend + np.array(season)[idx])
        return result
