"""Read a demand trace (CSV: a timestamp column and a value column, any regular resolution; by default
the first two columns, or any two chosen by header name or 0-based index) into a Series at its
native step. Missing rows and empty or NA values are NaN: gaps are missing data, not
zero traffic.

Real traces come in many shapes, and each is read rather than rejected where the meaning is clear:
timestamps as epoch seconds or milliseconds or ISO 8601 (with or without an offset; without one they
are UTC, or local time in ``timezone``, where the repeated hour of a daylight-saving change is told
apart by the order of the rows); a header row or none; rows out of order (sorted) and rows with the
same timestamp (averaged: two readings of one rate). What was done is returned as notes."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from walletplatform.forecast import series
from walletplatform.models import errors

MISSING = frozenset({"", "nan", "na", "n/a", "null", "none", "-"})
# Far above any real request rate, and far enough below the float range that sums and percentiles of
# a trace stay finite (a value of 1.7e308 overflowed to infinity).
MAX_DEMAND = 1e15
EPOCH_MILLISECONDS = 1e11  # epoch seconds reach this in the year 5138; larger numbers are milliseconds
# The grid a trace is replayed on is bounded by its rows, not by its timestamps: one stray row (a
# timestamp of 0 in a trace of today, a year typed 2040) would otherwise ask for billions of points.
# A grid may be 10 times the rows (traces with long gaps are read), and at most 20 years of minutes.
# The backtest replays every minute, so the minutes are bounded by the rows too: 10 hours of minutes a
# row (an hourly trace with gaps); two rows 16 years apart were one 16-year "step" of 8 million minutes.
GRID_PER_ROW = 10
MINUTES_PER_ROW = GRID_PER_ROW * 60
MIN_GRID = 100_000
MAX_MINUTES = 20 * 366 * 24 * 60


@dataclasses.dataclass(frozen=True)
class Trace:
    data: series.Series
    notes: tuple[str, ...] = ()


class _Clock:
    """Timestamps to epoch seconds. Naive local times in ``zone``: in the repeated hour of a
    daylight-saving change, a reading at or before the previous one starts the second pass (fold=1),
    which lasts until the clock leaves the repeated hour."""

    def __init__(self, zone: ZoneInfo | None) -> None:
        self.zone = zone
        self.previous: datetime | None = None
        self.second_pass = False
        self.folds = 0

    def __call__(self, text: str) -> float:
        value = text.strip()
        try:
            number = float(value)
        except ValueError:
            return self._aware(datetime.fromisoformat(value.replace("Z", "+00:00"))).timestamp()
        if not math.isfinite(number):
            raise ValueError(f"timestamp {value} is not finite")
        return number / 1000 if abs(number) >= EPOCH_MILLISECONDS else number

    def _aware(self, parsed: datetime) -> datetime:
        if parsed.tzinfo is not None:
            return parsed
        if self.zone is None:
            return parsed.replace(tzinfo=UTC)
        local = parsed.replace(tzinfo=self.zone)
        ambiguous = local.utcoffset() != local.replace(fold=1).utcoffset()
        if not ambiguous:
            self.second_pass = False
        elif self.previous is not None and parsed <= self.previous and not self.second_pass:
            self.second_pass = True
            self.folds += 1
        self.previous = parsed
        return local.replace(fold=1) if ambiguous and self.second_pass else local


def _value(text: str) -> float:
    cleaned = text.strip()
    if cleaned.lower() in MISSING:
        return math.nan
    value = float(cleaned)
    if math.isinf(value) or value < 0:
        raise ValueError(f"demand must be finite and not negative, not {cleaned}")
    if value > MAX_DEMAND:
        raise ValueError(f"demand must be at most {MAX_DEMAND:g}, not {cleaned}")
    return value


def _is_data(row: list[str], columns: tuple[int, int] = (0, 1)) -> bool:
    try:
        _Clock(None)(row[columns[0]])
        _value(row[columns[1]])
    except (ValueError, IndexError):
        return False
    return True


def _column(choice: str | None, default: int, flag: str, header: list[str], source: str) -> int:
    """The index of a column given by header name or 0-based index; an error lists the file's columns."""
    if choice is None:
        return default
    if choice.strip().isdigit():
        index = int(choice)
        if index >= len(header):
            raise errors.SpecError(
                [
                    errors.Problem(
                        path=flag, message=f"column {index} does not exist: {source} has {len(header)} columns"
                    )
                ]
            )
        return index
    if choice not in header:
        names = ", ".join(repr(name) for name in header)
        raise errors.SpecError(
            [errors.Problem(path=flag, message=f"no column {choice!r} in {source}; its columns: {names}")]
        )
    return header.index(choice)


def read_trace(
    text: str,
    source: str = "trace",
    zero_fill_max: float = 0.0,
    timezone: ZoneInfo | None = None,
    *,
    time_column: str | None = None,
    value_column: str | None = None,
) -> Trace:
    """Parse CSV text; the step is the most common interval between rows.

    ``time_column`` and ``value_column`` choose the columns by header name or 0-based index (default
    the first two). ``zero_fill_max`` fills gaps up to that many seconds with 0 for traces that omit
    zero rows (the NASA log has no row for a minute without requests); longer gaps stay NaN."""
    reader = csv.reader(io.StringIO(text, newline=""))  # the csv module reads its own line endings
    try:
        rows = [(number, row) for number, row in enumerate(reader, start=1) if row]
    except csv.Error as exc:
        problem = errors.Problem(path=f"{source}:{reader.line_num}", message=f"not CSV: {exc}")
        raise errors.SpecError([problem]) from None
    first = rows[0][1] if rows else []
    columns = (
        _column(time_column, 0, "--time-column", first, source),
        _column(value_column, 1, "--value-column", first, source),
    )
    if rows and not _is_data(first, columns):
        rows = rows[1:]  # the header
    if len(rows) < 2:
        raise errors.SpecError([errors.Problem(path=source, message="needs at least two rows of timestamp,value")])
    clock = _Clock(timezone)
    times, values = np.empty(len(rows)), np.empty(len(rows))
    for i, (number, row) in enumerate(rows):
        try:
            times[i], values[i] = clock(row[columns[0]]), _value(row[columns[1]])
        except (ValueError, IndexError) as exc:
            why = str(exc) if isinstance(exc, ValueError) else f"fewer than {max(columns) + 1} columns"
            cells = [row[c] if c < len(row) else None for c in columns]
            raise errors.SpecError(
                [errors.Problem(path=f"{source}:{number}", message=f"cannot read {cells!r} as timestamp,value: {why}")]
            ) from None
    notes = [f"{clock.folds} repeated local hour(s) read as the second pass"] if clock.folds else []
    if np.any(np.diff(times) < 0):
        notes.append("rows were out of time order and were sorted")
        order = np.argsort(times, kind="stable")
        times, values = times[order], values[order]
    unique, inverse = np.unique(times, return_inverse=True)
    if len(unique) < len(times):
        notes.append(f"{len(times) - len(unique)} rows repeat a timestamp; their values are averaged")
        times, values = unique, _group_means(inverse, values)
    if len(times) < 2:
        raise errors.SpecError([errors.Problem(path=source, message="needs at least two distinct timestamps")])
    diffs, counts = np.unique(np.diff(times), return_counts=True)
    step = float(diffs[np.argmax(counts)])
    _check_span(times, step, source)
    result = series.from_points(times, values, step)
    if zero_fill_max > 0:
        result, filled = _fill_short_gaps(result, zero_fill_max)
        if filled:
            notes.append(f"{filled} points in gaps of up to {zero_fill_max:g}s read as zero")
    gaps = int(np.count_nonzero(np.isnan(result.values)))
    if gaps:
        notes.append(f"{gaps} of {len(result)} points are gaps (no row or no value): skipped, not read as zero")
    return Trace(result, tuple(notes))


def _iso(seconds: float) -> str:
    try:
        return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):
        return f"{seconds:g} s"


def _check_span(times: series.Array, step: float, source: str) -> None:
    """SpecError when the rows' span at ``step`` is far more points than rows, far more minutes than
    rows, or longer than MAX_MINUTES: it names the widest gap, where a stray row usually is."""
    span = float(times[-1] - times[0])
    points = span / step + 1
    minutes = span / 60
    if (
        points <= max(GRID_PER_ROW * len(times), MIN_GRID)
        and minutes <= max(MINUTES_PER_ROW * len(times), MIN_GRID)
        and minutes <= MAX_MINUTES
    ):
        return
    widest = int(np.argmax(np.diff(times)))
    raise errors.SpecError(
        [
            errors.Problem(
                path=source,
                message=(
                    f"{len(times):,} rows at a {step:g}s step span {span / 86400:,.1f} days ({points:,.0f} points), "
                    f"more than {GRID_PER_ROW} points or {MINUTES_PER_ROW} minutes per row, or "
                    f"{MAX_MINUTES // (366 * 24 * 60)} years, allow; "
                    f"the widest gap is between {_iso(times[widest])} and {_iso(times[widest + 1])}: "
                    "is a row out of place?"
                ),
            )
        ]
    )


def _fill_short_gaps(data: series.Series, max_seconds: float) -> tuple[series.Series, int]:
    """Gaps no longer than ``max_seconds`` filled with 0, and how many points that filled."""
    values = data.values.copy()
    missing = np.isnan(values)
    edges = np.diff(np.concatenate(([0], missing.astype(np.int8), [0])))
    filled = 0
    for begin, end in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        if (end - begin) * data.step <= max_seconds:
            values[begin:end] = 0.0
            filled += int(end - begin)
    return series.Series(data.start, data.step, values), filled


def per_minute(data: series.Series) -> series.Series:
    """Demand each minute as a rate in the trace's own unit: a coarser bucket's value holds for the
    minutes it covers; finer samples are averaged over each minute (NaN samples skipped, a minute
    with none is a gap)."""
    if data.step >= 60:
        minutes = int(len(data) * data.step // 60)
        index = (np.arange(minutes) * 60 // data.step).astype(np.int64)
        return series.Series(data.start, 60.0, data.values[index])
    minute = (data.step * np.arange(len(data)) // 60).astype(np.int64)  # minutes from the first sample
    return series.Series(data.start, 60.0, _group_means(minute, data.values))


def _group_means(groups: npt.NDArray[np.int64], values: series.Array) -> series.Array:
    """The mean of ``values`` per group index 0..max, NaN skipped; a group with no number is NaN."""
    valid = ~np.isnan(values)
    sums = np.bincount(groups, weights=np.where(valid, values, 0.0))
    counts = np.bincount(groups, weights=valid.astype(np.float64))
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
