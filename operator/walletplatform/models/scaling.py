"""The ScalingPolicy custom resource: scheduled floors, predictive floors, mode and overrides for one
or more services of a WalletPlatform. Its behaviour lives in ``walletplatform.scaling``."""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, ClassVar, Literal

import pydantic
from pydantic import Field

from walletplatform.models import common, platform, promql

Weekday = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
WEEKDAYS: tuple[Weekday, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
ALL_DAYS: list[Weekday] = list(WEEKDAYS)


def _check_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {value!r}") from exc
    return value


TimeZone = Annotated[str, pydantic.AfterValidator(_check_zone)]
CLOCK_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


def _hh_mm(value: object) -> object:
    """A clock time as the CRD takes it: the string HH:MM (not 09:00:30, not 9:00, not a number)."""
    if isinstance(value, time):
        return value
    if not isinstance(value, str) or not re.fullmatch(CLOCK_PATTERN, value):
        raise ValueError(f"{value!r} is not a time of day written HH:MM")
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


ClockTime = Annotated[
    time,
    pydantic.BeforeValidator(_hh_mm),
    pydantic.PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str),
    pydantic.WithJsonSchema({"type": "string", "pattern": CLOCK_PATTERN}),
]
PromQL = Annotated[str, pydantic.AfterValidator(promql.check_promql), Field(min_length=1)]


class Mode(StrEnum):
    AUTO = "Auto"
    FORECAST_ONLY = "ForecastOnly"
    PAUSED = "Paused"


class Schedule(common.WalletModel):
    """A recurring window, in a time zone, during which the floor is at least ``floor``.

    A window starting at 23:00 for 7h runs into the next morning; ``days`` are the days it starts."""

    __cel__: ClassVar[tuple[common.Cel, ...]] = (
        common.Cel("has(self.duration) != has(self.end)", "give exactly one of duration and end", ".duration"),
    )

    name: common.DnsLabel = Field(description="Window name, shown in explanations.")
    start: ClockTime = Field(description="Local start time, HH:MM.")
    duration: Annotated[common.Duration, common.within("1m", "7d")] | None = Field(
        default=None, description="Length; give this or end."
    )
    end: ClockTime | None = Field(default=None, description="Local end time, HH:MM; give this or duration.")
    days: list[Weekday] = Field(
        default_factory=lambda: list(ALL_DAYS), min_length=1, max_length=7, description="Start days."
    )
    time_zone: TimeZone | None = Field(default=None, description="IANA zone; the policy's zone when unset.")
    floor: int = Field(ge=0, description="Replica floor while the window is active.")

    @pydantic.model_validator(mode="after")
    def _duration_or_end(self) -> Schedule:
        if (self.duration is None) == (self.end is None):
            raise common.cross_field_error("duration", "give exactly one of duration and end")
        if self.duration is not None and not timedelta(0) < self.duration <= timedelta(days=7):
            raise common.cross_field_error(
                "duration",
                "{value} must be more than 0s and at most 7d",
                value=common.format_duration(self.duration),
            )
        return self

    @property
    def length(self) -> timedelta:
        """The window's length, from duration or from end (an end at or before start is next day)."""
        if self.duration is not None:
            return self.duration
        assert self.end is not None
        start = self.start.hour * 60 + self.start.minute
        end = self.end.hour * 60 + self.end.minute
        return timedelta(minutes=(end - start) % 1440 or 1440)


ForecasterName = Literal["seasonal-naive", "holt-winters", "seasonal-profile"]


class Predictive(common.WalletModel):
    """Forecast demand from Prometheus history and keep enough replicas ready ahead of it."""

    enabled: bool = Field(default=True, description="Compute predictive floors.")
    query: PromQL = Field(description="PromQL giving demand for the service, e.g. requests per second.")
    capacity_per_replica: float = Field(gt=0, description="Demand one replica serves at 100% utilisation.")
    target_utilization: float = Field(default=0.7, gt=0, le=1, description="Utilisation to plan for.")
    lookback: Annotated[common.Duration, common.within("0s", "90d")] = Field(
        default=timedelta(days=14), description="History to learn from, 7d-90d."
    )
    horizon: Annotated[common.Duration, common.within("1m", "7d")] = Field(
        default=timedelta(hours=2),
        description="Deprecated and ignored (it never changed a decision): the predictive floor covers "
        "leadTime + startup ahead of now. Accepted so that existing policies still apply; to be removed "
        "in v1beta1.",
    )
    lead_time: Annotated[common.Duration, common.within("0s", "1d")] = Field(
        default=timedelta(minutes=5), description="Apply floors this early, at most 1d."
    )
    startup: Annotated[common.Duration, common.within("0s", "1h")] = Field(
        default=timedelta(minutes=2), description="Pod start-up time, at most 1h."
    )
    headroom: float = Field(default=0.1, ge=0, le=2, description="Extra capacity fraction, 0.1 = +10%.")
    min_history: Annotated[common.Duration, common.within("0s", "90d")] = Field(
        default=timedelta(days=7), description="Less history: no forecast."
    )
    step: Annotated[common.Duration, common.within("10s", "1h")] = Field(
        default=timedelta(minutes=1), description="Resolution of the query, 10s-1h."
    )
    refresh: Annotated[common.Duration, common.within("10s", "1d")] = Field(
        default=timedelta(minutes=10), description="Re-query history and re-forecast this often; decide every interval."
    )
    forecaster: ForecasterName = Field(default="seasonal-profile", description="Forecasting model.")
    max_error_ratio: float = Field(
        default=0.5,
        gt=0,
        description="Skip the forecast when its floors, replayed over the last two days, would have held"
        " more than this fraction of replicas beyond need.",
    )

    @pydantic.model_validator(mode="after")
    def _durations(self) -> Predictive:
        if self.lookback < timedelta(days=7):
            raise common.cross_field_error(
                "lookback", "{value} is shorter than 7d", value=common.format_duration(self.lookback)
            )
        if self.lead_time < self.startup:
            raise common.cross_field_error(
                "leadTime",
                "{value} is shorter than startup {startup}",
                value=common.format_duration(self.lead_time),
                startup=common.format_duration(self.startup),
            )
        points = self.lookback / self.step
        if points > MAX_HISTORY_POINTS:
            raise common.cross_field_error(
                "step",
                "lookback {lookback} at step {step} is {points} points of history; at most {most}",
                lookback=common.format_duration(self.lookback),
                step=common.format_duration(self.step),
                points=f"{points:.0f}",
                most=str(MAX_HISTORY_POINTS),
            )
        if self.min_history > self.lookback:
            raise common.cross_field_error(
                "minHistory",
                "{value} is longer than lookback {lookback}",
                value=common.format_duration(self.min_history),
                lookback=common.format_duration(self.lookback),
            )
        return self


# Work per refresh is bounded: 90d at 1m is 129,600 points (12 range queries of 11,000).
MAX_HISTORY_POINTS = 200_000


class Override(common.WalletModel):
    """A manual floor for one service until it expires, e.g. transaction >= 12 until 18:00."""

    service: common.DnsLabel = Field(description="Service the override applies to.")
    floor: int = Field(ge=0, description="Replica floor while the override is active.")
    expires: pydantic.AwareDatetime = Field(description="RFC 3339 time with offset when it stops applying.")
    reason: str = Field(default="", description="Why, for the explanation.")


class Bounds(common.WalletModel):
    """Clamp every floor this policy computes."""

    __ordered__: ClassVar[tuple[common.Ordered, ...]] = (common.Ordered("min_replicas", "max_replicas"),)
    min_replicas: int | None = Field(default=None, ge=0, description="Lowest floor; the service's own when unset.")
    max_replicas: int | None = Field(default=None, ge=1, description="Highest floor; the HPA max when unset.")


class ScalingPolicySpec(common.WalletModel):
    """Desired scaling behaviour for services of one WalletPlatform."""

    __cel__: ClassVar[tuple[common.Cel, ...]] = (
        common.Cel(
            "!has(self.overrides) || self.overrides.all(o, o.service in self.services)",
            "every override must name a service this policy governs",
            ".overrides",
        ),
    )

    platform_ref: common.DnsLabel = Field(description="Name of the WalletPlatform in the same namespace.")
    services: list[common.DnsLabel] = Field(
        min_length=1, max_length=32, description="Services of that platform it governs."
    )
    mode: Mode = Field(default=Mode.AUTO, description="Auto applies floors; ForecastOnly reports; Paused freezes.")
    time_zone: TimeZone = Field(default="UTC", description="Default IANA time zone of the schedules.")
    bounds: Bounds = Field(default_factory=Bounds, description="Clamp for every floor.")
    schedules: list[Schedule] = Field(default_factory=list, max_length=64, description="Recurring floors.")
    predictive: Predictive | None = Field(default=None, description="Forecast-driven floors.")
    overrides: list[Override] = Field(default_factory=list, max_length=64, description="Manual floors with an expiry.")
    interval: Annotated[common.Duration, common.within("1s", "1h")] = Field(
        default=timedelta(seconds=60), description="How often to decide, 1s-1h."
    )
    schedule_lead: Annotated[common.Duration, common.within("0s", "1d")] = Field(
        default=timedelta(minutes=5), description="Raise a schedule's floor this long before its window starts."
    )
    step_down_per_minute: int = Field(default=1, ge=1, description="Largest floor decrease per minute.")
    hold_on_error: Annotated[common.Duration, common.within("0s", "7d")] = Field(
        default=timedelta(minutes=15), description="Hold the last good floor this long when Prometheus fails."
    )

    @pydantic.model_validator(mode="after")
    def _overrides_name_governed_services(self) -> ScalingPolicySpec:
        for override in self.overrides:
            if override.service not in self.services:
                raise common.cross_field_error(
                    "overrides",
                    "override for {service} names a service this policy does not govern",
                    service=repr(override.service),
                )
        return self


class ServiceScalingStatus(common.WalletModel):
    """The explanation of the last decision for one service."""

    model_config = common.WalletModel.model_config | {"extra": "ignore"}
    service: str = Field(description="Service name.")
    floor: int = Field(description="Floor written to the HPA (or that would be, in ForecastOnly).")
    desired: int = Field(description="Floor before stepping down gradually.")
    source: str = Field(description="Input that won: static, schedule:<name>, predictive, override, hold.")
    reasons: list[str] = Field(default_factory=list, description="Every input and its value.")
    forecast_peak: float | None = Field(default=None, description="Highest forecast demand in the window.")
    forecast_peak_at: datetime | None = Field(default=None, description="When that peak is expected.")
    error_ratio: float | None = Field(
        default=None,
        description="Replicas the forecast floors of the last two days would have held beyond need, as a"
        " fraction of need (replayed; compared with maxErrorRatio).",
    )
    shortfall_ratio: float | None = Field(
        default=None, description="Replicas those floors fell short of need, as a fraction of need (the HPA reacts)."
    )
    predictive_applied: bool = Field(default=False, description="Whether the forecast was used.")
    last_error: str = Field(default="", description="Last Prometheus or forecasting problem.")
    last_good: datetime | None = Field(default=None, description="Last time demand data was usable.")
    last_good_floor: int | None = Field(default=None, description="Floor decided from usable data then.")
    decided_at: datetime | None = Field(default=None, description="When this floor was last changed.")


class ScalingPolicyStatus(common.WalletModel):
    """Observed state of the policy, written by the scaling engine."""

    model_config = common.WalletModel.model_config | {"extra": "ignore"}
    observed_generation: int | None = Field(default=None, description="Last generation acted on.")
    mode: str = Field(default="", description="Mode in effect.")
    conditions: list[platform.Condition] = Field(default_factory=list, description="Valid, PrometheusHealthy.")
    services: list[ServiceScalingStatus] = Field(default_factory=list, description="Per-service decisions.")
    last_decision: datetime | None = Field(default=None, description="Time of the last decision.")
