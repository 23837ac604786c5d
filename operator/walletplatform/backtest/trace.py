"""Read a demand trace (CSV: a timestamp column and a value column, any regular resolution) into a
Series at its native step. Missing rows are NaN: gaps are missing data, not zero traffic."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import numpy as np

from walletplatform.forecast import series
from walletplatform.models import errors


def _timestamp(text: str) -> float:
    value = text.strip()
    try:
        return float(value)
    except ValueError:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def parse_trace(text: str, source: str = "trace", zero_fill_max: float = 0.0) -> series.Series:
    """Parse CSV text; the step is the most common interval between rows.

    ``zero_fill_max`` fills gaps up to that many seconds with 0 for traces that omit zero rows (the NASA
    log has no row for a minute without requests); longer gaps stay NaN."""
    rows = list(csv.reader(io.StringIO(text)))
    if len(rows) < 3:
        raise errors.SpecError([errors.Problem(path=source, message="needs a header and at least two rows")])
    times, values = [], []
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        try:
            times.append(_timestamp(row[0]))
            values.append(float(row[1]))
        except (ValueError, IndexError):
            raise errors.SpecError(
                [errors.Problem(path=f"{source}:{number}", message=f"cannot read {row!r}")]
            ) from None
    t = np.array(times)
    if np.any(np.diff(t) <= 0):
        raise errors.SpecError([errors.Problem(path=source, message="timestamps are not strictly increasing")])
    diffs, counts = np.unique(np.diff(t), return_counts=True)
    step = float(diffs[np.argmax(counts)])
    result = series.from_points(t, np.array(values), step)
    if zero_fill_max > 0:
        result = _fill_short_gaps(result, zero_fill_max)
    return result


def _fill_short_gaps(data: series.Series, max_seconds: float) -> series.Series:
    values = data.values.copy()
    missing = np.isnan(values)
    edges = np.diff(np.concatenate(([0], missing.astype(np.int8), [0])))
    for begin, end in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        if (end - begin) * data.step <= max_seconds:
            values[begin:end] = 0.0
    return series.Series(data.start, data.step, values)


def per_minute(data: series.Series) -> series.Series:
    """Demand each minute: a bucket's value holds for the minutes it covers (a rate, not a count)."""
    if data.step < 60:
        raise errors.SpecError([errors.Problem(path="trace", message=f"resolution {data.step:g}s is finer than 1m")])
    minutes = int(len(data) * data.step // 60)
    index = (np.arange(minutes) * 60 // data.step).astype(np.int64)
    return series.Series(data.start, 60.0, data.values[index])
