"""Schedule windows in IANA time zones: which are active at an instant, correctly across midnight and
daylight-saving changes.

A window starts at its local start time on each listed day. A start inside the skipped hour of a
spring-forward day begins when the clocks jump (02:30 -> 03:00 local is read as 02:30 standard time,
i.e. 03:30 summer time); a start inside the repeated hour of a fall-back day begins at its first
occurrence. A ``duration`` is elapsed time; an ``end`` is a local wall-clock time."""

from __future__ import annotations

import dataclasses
import zoneinfo
from datetime import UTC, date, datetime, timedelta

from walletplatform.models import scaling


@dataclasses.dataclass(frozen=True)
class Window:
    """One occurrence of a schedule, in UTC."""

    schedule: scaling.Schedule
    start: datetime
    end: datetime


def _local(day: date, clock: scaling.ClockTime, zone: zoneinfo.ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, clock.hour, clock.minute, tzinfo=zone, fold=0).astimezone(UTC)


def occurrences(schedule: scaling.Schedule, default_zone: str, around: datetime) -> list[Window]:
    """The schedule's windows that start within 8 days before ``around`` and 1 day after it."""
    zone = zoneinfo.ZoneInfo(schedule.time_zone or default_zone)
    local_today = around.astimezone(zone).date()
    windows = []
    for offset in range(-8, 2):
        day = local_today + timedelta(days=offset)
        if scaling.WEEKDAYS[day.weekday()] not in schedule.days:
            continue
        start = _local(day, schedule.start, zone)
        if schedule.duration is not None:
            end = start + schedule.duration
        else:
            assert schedule.end is not None
            end_day = day if schedule.end > schedule.start else day + timedelta(days=1)
            end = _local(end_day, schedule.end, zone)
        if end > start:
            windows.append(Window(schedule, start, end))
    return windows


def active_windows(policy: scaling.ScalingPolicySpec, now: datetime, lead: timedelta = timedelta(0)) -> list[Window]:
    """Windows active at any instant of [now, now + lead]: a floor is raised ``lead`` before its window."""
    later = now + lead
    return [
        window
        for schedule in policy.schedules
        for window in occurrences(schedule, policy.time_zone, now)
        if window.start <= later and now < window.end
    ]


def schedule_floor(policy: scaling.ScalingPolicySpec, now: datetime, lead: timedelta) -> tuple[int, str | None]:
    """The highest floor of the active windows (0 when none) and the window's name."""
    best: tuple[int, str | None] = (0, None)
    if not policy.schedules:
        return best
    for window in active_windows(policy, now, lead):
        if window.schedule.floor > best[0]:
            best = (window.schedule.floor, window.schedule.name)
    return best
