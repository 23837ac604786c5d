"""The one seam every forecaster implements."""

from __future__ import annotations

from typing import Protocol

from walletplatform.forecast import series


class Forecaster(Protocol):
    """Predict demand after the end of ``history``."""

    @property
    def name(self) -> str:
        """The name a ScalingPolicy uses to choose it."""
        ...

    def forecast(self, history: series.Series, horizon: int) -> series.Array:
        """``horizon`` values at ``history.end + step * k`` for k = 0..horizon-1; NaN where unknown."""
        ...
