"""The scaling engine's pure decisions: schedules in time zones, combine and clamp, step-down, modes,
overrides, Prometheus trouble, gating."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from walletplatform.forecast import registry, series
from walletplatform.models import scaling
from walletplatform.scaling import decide, demand, predictive, schedule

BERLIN = ZoneInfo("Europe/Berlin")


def policy(**spec: object) -> scaling.ScalingPolicySpec:
    return scaling.ScalingPolicySpec.model_validate({"platformRef": "p", "services": ["svc"], **spec})


def window(start: str, floor: int, **extra: object) -> dict[str, object]:
    return {"name": "w", "start": start, "floor": floor, **extra}


SCHEDULE_CASES = [
    # (window, instant in Berlin, active?)
    (window("09:00", 8, end="18:00", days=["Mon"]), datetime(2026, 11, 23, 9, 0, tzinfo=BERLIN), True),
    (window("09:00", 8, end="18:00", days=["Mon"]), datetime(2026, 11, 23, 18, 0, tzinfo=BERLIN), False),
    (window("09:00", 8, end="18:00", days=["Mon"]), datetime(2026, 11, 24, 10, 0, tzinfo=BERLIN), False),
    (window("23:00", 3, end="06:00", days=["Fri"]), datetime(2026, 11, 28, 5, 59, tzinfo=BERLIN), True),
    (window("23:00", 3, end="06:00", days=["Fri"]), datetime(2026, 11, 28, 6, 0, tzinfo=BERLIN), False),
    # spring forward 2026-03-29: 02:00 -> 03:00. A 02:30 start happens when the clocks jump (03:30 CEST).
    (window("02:30", 5, duration="1h"), datetime(2026, 3, 29, 3, 20, tzinfo=BERLIN), False),
    (window("02:30", 5, duration="1h"), datetime(2026, 3, 29, 3, 40, tzinfo=BERLIN), True),
    # an end-time window across the gap ends at 04:00 local wall time
    (window("01:00", 5, end="04:00"), datetime(2026, 3, 29, 3, 59, tzinfo=BERLIN), True),
    (window("01:00", 5, end="04:00"), datetime(2026, 3, 29, 4, 0, tzinfo=BERLIN), False),
    # fall back 2026-10-25: 03:00 -> 02:00. 02:30 starts at its first occurrence (CEST); 1h elapsed.
    (window("02:30", 5, duration="1h"), datetime(2026, 10, 25, 2, 45, tzinfo=BERLIN, fold=0), True),
    (window("02:30", 5, duration="1h"), datetime(2026, 10, 25, 2, 45, tzinfo=BERLIN, fold=1), False),
]


@pytest.mark.parametrize(
    ("spec", "at", "active"),
    SCHEDULE_CASES,
    ids=[
        "business-start",
        "business-end-exclusive",
        "wrong-day",
        "overnight-before-end",
        "overnight-end",
        "dst-gap-before-shifted-start",
        "dst-gap-after-shifted-start",
        "dst-gap-end-wall-clock",
        "dst-gap-end-exclusive",
        "dst-overlap-first-occurrence",
        "dst-overlap-second-occurrence-after-1h",
    ],
)
def test_schedule_windows(spec: dict[str, object], at: datetime, active: bool) -> None:
    p = policy(timeZone="Europe/Berlin", schedules=[spec])
    floor, _ = schedule.schedule_floor(p, at.astimezone(UTC), timedelta(0))
    assert (floor > 0) == active


def test_overlapping_windows_take_highest_and_lead_raises_early() -> None:
    p = policy(
        timeZone="Europe/Berlin",
        schedules=[
            {"name": "day", "start": "08:00", "end": "20:00", "floor": 4},
            {"name": "peak", "start": "12:00", "duration": "2h", "floor": 9},
        ],
    )
    noon = datetime(2026, 11, 23, 12, 30, tzinfo=BERLIN).astimezone(UTC)
    assert schedule.schedule_floor(p, noon, timedelta(0)) == (9, "peak")
    before = datetime(2026, 11, 23, 11, 56, tzinfo=BERLIN).astimezone(UTC)
    assert schedule.schedule_floor(p, before, timedelta(0)) == (4, "day")
    assert schedule.schedule_floor(p, before, timedelta(minutes=5)) == (9, "peak")


NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
STATE = decide.ServiceState("svc", static_min=3, max_replicas=20, current_floor=3, current_replicas=3)


def test_floor_is_max_of_inputs_clamped() -> None:
    p = policy(
        schedules=[window("09:00", 30, end="18:00")],
        overrides=[{"service": "svc", "floor": 12, "expires": "2026-11-23T18:00:00Z"}],
    )
    result = decide.decide(p, STATE, None, NOW)
    assert (result.floor, result.source) == (20, "schedule")  # 30 clamped to maxReplicas 20
    bounded = decide.decide(
        policy(bounds={"maxReplicas": 10}, schedules=[window("09:00", 30, end="18:00")]), STATE, None, NOW
    )
    assert bounded.floor == 10


def test_override_applies_until_it_expires() -> None:
    p = policy(overrides=[{"service": "svc", "floor": 12, "expires": "2026-11-23T18:00:00+00:00", "reason": "launch"}])
    assert decide.decide(p, STATE, None, NOW).floor == 12
    later = decide.decide(
        p, STATE, None, datetime(2026, 11, 23, 18, 0, tzinfo=UTC), decide.Memory(floor=3, decided_at=NOW)
    )
    assert later.floor == 3 and later.source == "static"


def test_step_down_is_gradual_and_step_up_immediate() -> None:
    p = policy(stepDownPerMinute=2)
    memory = decide.Memory(floor=12, decided_at=NOW)
    first = decide.decide(p, STATE, None, NOW + timedelta(minutes=1), memory)
    assert (first.desired, first.floor) == (3, 10)
    second = decide.decide(p, STATE, None, NOW + timedelta(minutes=4), first.memory)
    assert second.floor == 4  # three minutes later: 10 - 2*3
    up = decide.decide(
        policy(overrides=[{"service": "svc", "floor": 15, "expires": "2027-01-01T00:00:00Z"}]),
        STATE,
        None,
        NOW + timedelta(minutes=5),
        second.memory,
    )
    assert up.floor == 15


@pytest.mark.parametrize(
    ("mode", "floor", "apply"), [("Auto", 12, True), ("ForecastOnly", 12, False), ("Paused", 5, False)], ids=str
)
def test_modes(mode: str, floor: int, apply: bool) -> None:
    p = policy(mode=mode, overrides=[{"service": "svc", "floor": 12, "expires": "2027-01-01T00:00:00Z"}])
    state = decide.ServiceState("svc", 3, 20, current_floor=5, current_replicas=5)
    result = decide.decide(p, state, None, NOW)
    assert (result.floor, result.apply) == (floor, apply)


def trouble_policy() -> scaling.ScalingPolicySpec:
    return policy(
        holdOnError="15m",
        schedules=[window("09:00", 4, end="18:00")],
        predictive={"query": "sum(rate(x[5m]))", "capacityPerReplica": 10},
    )


def test_prometheus_trouble_holds_then_falls_back() -> None:
    memory = decide.Memory(floor=9, decided_at=NOW, last_good_floor=9, last_good_at=NOW)
    state = decide.ServiceState("svc", 3, 20, current_floor=9, current_replicas=11)
    trouble = demand.Trouble("timeout", "no answer in 5s")
    held = decide.decide(trouble_policy(), state, trouble, NOW + timedelta(minutes=10), memory)
    assert (held.floor, held.source) == (11, "hold")  # never below current replicas while holding
    assert held.trouble == trouble and held.memory.last_good_at == NOW
    expired = decide.decide(trouble_policy(), state, trouble, NOW + timedelta(minutes=16), held.memory)
    assert expired.desired == 4 and expired.source == "fallback:schedule"
    assert expired.floor == 5  # stepping down from 11 by 1/min over the 6 minutes since the last decision


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        ([], "empty"),
        ([{"metric": {}, "values": [[1, "NaN"], [61, "NaN"]]}], "nan"),
        ([{"metric": {}, "values": [[1, "+Inf"]]}], "inf"),
        ([{"metric": {}, "values": [[1, "-3"]]}], "negative"),
        ([{"metric": {}}], "error"),
    ],
    ids=["empty-is-not-zero", "all-nan", "inf", "negative", "malformed"],
)
def test_bad_prometheus_answers_are_named(answer: list[dict[str, object]], kind: str) -> None:
    parsed = demand.parse_matrix(answer, 60)
    assert isinstance(parsed, demand.Trouble) and parsed.kind == kind


def test_matrix_sums_series_and_keeps_gaps() -> None:
    answer = [
        {"metric": {"a": "1"}, "values": [[0, "1"], [60, "2"], [180, "4"]]},
        {"metric": {"a": "2"}, "values": [[0, "10"], [180, "NaN"]]},
    ]
    parsed = demand.parse_matrix(answer, 60)
    assert isinstance(parsed, series.Series)
    assert parsed.values[0] == 11 and parsed.values[1] == 2 and np.isnan(parsed.values[2]) and parsed.values[3] == 4


def daily(days: int, step: float = 60.0, level: float = 100.0) -> series.Series:
    t = np.arange(int(days * 86400 / step)) * step
    return series.Series(0.0, step, level * (1.5 + np.sin(2 * np.pi * t / 86400)))


def test_predictive_gated_on_short_history() -> None:
    spec = scaling.Predictive(query="x", capacity_per_replica=10)
    history = daily(3)
    outlook = predictive.build_outlook(spec, registry.FORECASTERS["seasonal-profile"], history, history.end)
    result = predictive.forecast_floor(spec, outlook, history.end)
    assert not result.applied and result.reason == "only 3d of history; the policy needs 7d"


def test_accuracy_counts_replicas_beyond_and_short_of_need_above_the_static_minimum() -> None:
    spec = scaling.Predictive(query="x", capacity_per_replica=10, target_utilization=1.0, headroom=0.0)
    replays = (predictive.Replay(0, predicted=100, actual=50), predictive.Replay(3600, predicted=20, actual=60))
    # floors 10 and 2 against needs 5 and 6: 5 replicas too many, 4 too few, of 11 needed
    assert predictive.accuracy(replays, spec, 0) == predictive.Accuracy(excess=5 / 11, shortfall=4 / 11)
    # a static minimum of 8 covers both needs: only the first floor's 2 replicas above it are waste
    assert predictive.accuracy(replays, spec, 8) == predictive.Accuracy(excess=2 / 16, shortfall=0.0)
    assert predictive.accuracy((), spec, 3) is None
    assert predictive.accuracy((predictive.Replay(0, 5, 0),), spec, 0) is None


@dataclasses.dataclass
class Counting:
    """The seasonal profile, counting how often it is asked."""

    name: str = "seasonal-profile"
    calls: int = 0

    def forecast(self, history: series.Series, horizon: int) -> series.Array:
        self.calls += 1
        return registry.FORECASTERS["seasonal-profile"].forecast(history, horizon)


def test_replays_are_on_whole_hours_of_the_last_two_days_and_reused_by_the_next_refresh() -> None:
    spec = scaling.Predictive(query="x", capacity_per_replica=10)
    forecaster = Counting()
    history = daily(10).until(9 * 86400 + 1800)
    first = predictive.build_outlook(spec, forecaster, history, history.end)
    origins = [r.origin for r in first.replays]
    assert len(origins) == predictive.REPLAY_ORIGINS == 48
    assert origins[0] == 9 * 86400 and origins[-1] == 7 * 86400 + 3600 and all(o % 3600 == 0 for o in origins)
    assert forecaster.calls == 1 + 48

    forecaster.calls = 0
    later = daily(10).until(9 * 86400 + 3600 + 600)  # the next hour's window has passed: one new origin
    second = predictive.build_outlook(spec, forecaster, later, later.end, first)
    assert forecaster.calls == 1 + 1
    assert second.replays[0].origin == 9 * 86400 + 3600 and second.replays[1:] == first.replays[:-1]

    other = scaling.Predictive(query="x", capacity_per_replica=10, lead_time=timedelta(minutes=10))
    forecaster.calls = 0
    predictive.build_outlook(other, forecaster, later, later.end, first)  # another window: all replayed
    assert forecaster.calls == 1 + 48


def test_predictive_gated_when_replayed_floors_hold_too_many_replicas() -> None:
    spec = scaling.Predictive(query="x", capacity_per_replica=10)
    history = daily(10)
    moved = history.values.copy()
    moved[-2 * 1440 :] *= 0.1  # most traffic moved to another service two days ago
    history = series.Series(history.start, history.step, moved)
    outlook = predictive.build_outlook(spec, registry.FORECASTERS["seasonal-profile"], history, history.end)
    result = predictive.forecast_floor(spec, outlook, history.end)
    assert not result.applied and result.error_ratio is not None and result.error_ratio > 1
    assert f"held {result.error_ratio:.2f} more replicas than needed, above maxErrorRatio 0.5" in result.reason
    assert result.reason.startswith(f"floors replayed at {predictive.REPLAY_ORIGINS} recent origins")


def test_predictive_under_forecast_is_applied_and_its_shortfall_reported() -> None:
    spec = scaling.Predictive(query="x", capacity_per_replica=10)
    history = daily(10)
    grown = history.values.copy()
    grown[-2 * 1440 :] *= 2.5  # a launch: demand grew faster than the level factor (at most x1.5) follows
    history = series.Series(history.start, history.step, grown)
    outlook = predictive.build_outlook(spec, registry.FORECASTERS["seasonal-profile"], history, history.end)
    result = predictive.forecast_floor(spec, outlook, history.end)
    assert result.applied and result.error_ratio is not None and result.error_ratio < 0.01
    assert result.shortfall_ratio is not None and result.shortfall_ratio > 0.2


def test_noise_the_static_minimum_absorbs_does_not_gate_the_forecast() -> None:
    spec = scaling.Predictive(query="x", capacity_per_replica=10, max_error_ratio=0.01)
    rng = np.random.default_rng(1)
    history = series.Series(0.0, 60.0, rng.exponential(5, 10 * 1440))  # never needs more than 8 replicas
    outlook = predictive.build_outlook(spec, registry.FORECASTERS["seasonal-profile"], history, history.end)
    assert predictive.forecast_floor(spec, outlook, history.end, static_min=8).applied
    gated = predictive.forecast_floor(spec, outlook, history.end, static_min=0)
    assert not gated.applied and gated.error_ratio is not None and gated.error_ratio > 0.01


def test_predictive_floor_covers_coming_peak() -> None:
    spec = scaling.Predictive(query="x", capacity_per_replica=10, target_utilization=0.5, headroom=0.0)
    history = daily(10).until(9 * 86400 + 6 * 3600 - 300)  # five minutes before the daily peak (t=6h)
    outlook = predictive.build_outlook(spec, registry.FORECASTERS["seasonal-profile"], history, history.end)
    result = predictive.forecast_floor(spec, outlook, history.end)
    assert result.applied and result.error_ratio is not None and result.error_ratio < 0.1
    assert result.shortfall_ratio is not None and result.shortfall_ratio < 0.1
    assert result.peak == pytest.approx(250, rel=0.05)
    assert result.floor == predictive.replicas_for(result.peak, spec) == 50
