"""Seasonal naive: demand is what it was at the same time last week (or yesterday when last week is
missing). The baseline every other forecaster must beat."""

from __future__ import annotations

import dataclasses

import numpy as np

from walletplatform.forecast import series


@dataclasses.dataclass(frozen=True)
class SeasonalNaive:
    name: str = "seasonal-naive"
    seasons: tuple[float, ...] = (series.WEEK, series.DAY)

    def forecast(self, history: series.Series, horizon: int) -> series.Array:
        n = len(history)
        result = np.full(horizon, np.nan)
        targets = n + np.arange(horizon)
        for season in self.seasons:
            lagged = targets - history.steps(season)
            ok = (lagged >= 0) & (lagged < n) & np.isnan(result)
            result[ok] = history.values[lagged[ok]]
        return result
