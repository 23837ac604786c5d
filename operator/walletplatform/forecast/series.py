"""A regular time series with gaps: the only shape of history the forecasters and the backtest see.

Missing data is NaN, never zero: an empty Prometheus answer or a hole in a trace is not zero demand."""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
DAY = 86400.0
WEEK = 7 * DAY


@dataclasses.dataclass(frozen=True)
class Series:
    """``values[i]`` is demand at ``start + i * step`` (epoch seconds)."""

    start: float
    step: float
    values: Array

    def __post_init__(self) -> None:
        if self.step <= 0:
            raise ValueError(f"step must be positive, got {self.step}")

    def __len__(self) -> int:
        return len(self.values)

    @property
    def end(self) -> float:
        """Time just after the last sample: where a forecast starts."""
        return self.start + len(self.values) * self.step

    def steps(self, seconds: float) -> int:
        """How many samples span ``seconds`` (at least 1)."""
        return steps(seconds, self.step)

    def until(self, t: float) -> Series:
        """The history strictly before time ``t``."""
        count = int(np.clip(np.ceil((t - self.start) / self.step), 0, len(self.values)))
        return Series(self.start, self.step, self.values[:count])

    def covered(self) -> float:
        """Seconds from the first usable (non-NaN) sample to the end: how far back history reaches."""
        if not len(self.values):
            return 0.0
        if not np.isnan(self.values[0]):  # the usual case, without a scan
            return float(len(self.values)) * self.step
        usable = ~np.isnan(self.values)
        first = int(np.argmax(usable))  # the first True, or 0 when there is none
        return float(len(self.values) - first) * self.step if usable[first] else 0.0

    def tail(self, seconds: float) -> Series:
        """The last ``seconds`` of history."""
        count = min(len(self.values), self.steps(seconds))
        return Series(self.end - count * self.step, self.step, self.values[len(self.values) - count :])


def steps(seconds: float, step: float) -> int:
    """How many samples of ``step`` seconds span ``seconds`` (at least 1)."""
    return max(1, round(seconds / step))


def from_points(times: npt.ArrayLike, values: npt.ArrayLike, step: float) -> Series:
    """Place irregular (time, value) points on a regular grid of ``step`` seconds; holes become NaN."""
    t = np.asarray(times, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if t.size == 0:
        return Series(0.0, step, np.array([], dtype=np.float64))
    start = float(t.min())
    index = np.round((t - start) / step).astype(np.int64)
    grid = np.full(int(index.max()) + 1, np.nan)
    grid[index] = v
    return Series(start, step, grid)


def rolling_mean(values: Array, half_width: int) -> Array:
    """Centered moving average over ``2*half_width+1`` samples, ignoring NaN (NaN where all are NaN)."""
    if half_width <= 0:
        return values.copy()
    valid = ~np.isnan(values)
    filled = np.where(valid, values, 0.0)
    kernel = np.ones(2 * half_width + 1)
    sums = np.convolve(filled, kernel, mode="same")
    counts = np.convolve(valid.astype(np.float64), kernel, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def column_quantiles(samples: Array, q: float | Array) -> Array:
    """The ``q`` quantile of each column ignoring NaN (linear interpolation, like ``np.nanquantile``),
    NaN for an all-NaN column; ``q`` is one for all columns or one per column. One sort of the matrix:
    ``np.nanquantile`` loops over columns in Python."""
    ordered = np.sort(samples, axis=0)  # NaN sorts last
    counts = np.count_nonzero(~np.isnan(samples), axis=0)
    position = q * np.maximum(counts - 1, 0)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, np.maximum(counts - 1, 0))
    columns = np.arange(samples.shape[1])
    low, high = ordered[below, columns], ordered[above, columns]
    result = low + (high - low) * (position - below)
    return np.where(counts > 0, result, np.nan)
