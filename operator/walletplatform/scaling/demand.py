"""Parse a Prometheus range-query answer into demand history, naming every kind of bad answer.

An empty result is not zero demand, NaN is a gap, +Inf is an error: each is a named ``Trouble``
that the engine handles by policy (hold, then fall back) and counts in a metric."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from walletplatform.forecast import series

TroubleKind = Literal["empty", "nan", "inf", "negative", "error", "timeout", "unavailable"]


@dataclasses.dataclass(frozen=True)
class Trouble:
    """Why demand history could not be used."""

    kind: TroubleKind
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


def parse_matrix(result: Sequence[Mapping[str, object]], step: float) -> series.Series | Trouble:
    """Sum the series of a matrix answer onto a regular grid, or say why that is impossible."""
    if not result:
        return Trouble("empty", "the query returned no series (not read as zero demand)")
    points: dict[float, float] = {}
    for item in result:
        values = item.get("values")
        if not isinstance(values, Sequence):
            return Trouble("error", "a series has no 'values' list")
        for pair in values:
            if not isinstance(pair, Sequence) or len(pair) != 2:
                return Trouble("error", f"malformed sample {pair!r}")
            t, raw = float(pair[0]), float(str(pair[1]))
            if math.isinf(raw):
                return Trouble("inf", f"the query returned {raw} at {t:.0f}")
            if raw < 0:
                return Trouble("negative", f"the query returned {raw} at {t:.0f}; demand cannot be negative")
            if not math.isnan(raw):
                points[t] = points.get(t, 0.0) + raw
    if not points:
        return Trouble("nan", "every sample is NaN")
    times = np.array(sorted(points))
    return series.from_points(times, np.array([points[t] for t in times]), step)
