"""Replay one trace through every strategy and score it.

The first week is history only. Every minute each strategy sets the HPA's minReplicas; the simulated
HPA syncs every 15 s on metrics one scrape stale. A minute is saturated when its demand exceeds the
capacity of the pods that are ready. The predictive strategy runs the engine's own ``decide`` on an
outlook rebuilt every ``refresh`` from the history before that instant."""

from __future__ import annotations

import dataclasses
import math
import warnings
from datetime import UTC, datetime, timedelta

import numpy as np

from walletplatform.backtest import hpa, trace
from walletplatform.forecast import base, registry, series
from walletplatform.models import errors, scaling, service
from walletplatform.scaling import decide, predictive, schedule

SCRAPE_STALENESS = 30.0
WARMUP = 3600.0


@dataclasses.dataclass(frozen=True)
class Config:
    service: service.ServiceDefinition
    capacity: float
    target: float = 0.7
    startup: float = 120.0
    policy: scaling.ScalingPolicySpec | None = None
    forecaster: scaling.ForecasterName = registry.DEFAULT
    max_replicas: int | None = None


@dataclasses.dataclass
class Score:
    saturated_minutes: int = 0
    replica_minutes: float = 0.0
    actions: int = 0
    ready_capacity: list[float] = dataclasses.field(default_factory=list)

    def add(self, demand: float, replicas: float, ready: float, capacity: float) -> None:
        """Score one minute: ``replicas`` running, ``ready`` of them serving."""
        self.replica_minutes += replicas
        self.saturated_minutes += int(demand > ready * capacity)
        self.ready_capacity.append(ready * capacity)

    def as_dict(self, scored: int, oracle_hours: float) -> dict[str, float | int]:
        hours = self.replica_minutes / 60
        return {
            "saturated_pct": round(100 * self.saturated_minutes / max(1, scored), 3),
            "saturated_minutes": self.saturated_minutes,
            "replica_hours": round(hours, 1),
            "replica_hours_vs_oracle": round(hours / oracle_hours, 3) if oracle_hours else math.nan,
            "actions": self.actions,
        }


# The most replicas one backtest simulates (per strategy, per minute): far above any one service's
# maxReplicas here, and a bound on the work and memory of a replay.
MAX_REPLICAS = 10_000


def capacity_for_peak(data: series.Series, peak_replicas: int, target: float) -> float:
    """Capacity per replica such that the trace's 99.9th percentile needs ``peak_replicas`` at ``target``."""
    peak = float(np.nanpercentile(data.values, 99.9)) if np.any(~np.isnan(data.values)) else 0.0
    if peak <= 0:
        raise errors.SpecError(
            [errors.Problem(path="--trace", message="its 99.9th percentile is 0: nothing to size replicas by")]
        )
    return peak / (peak_replicas * target)


def predictive_spec(config: Config, naive: bool = False) -> scaling.Predictive:
    """The policy's predictive settings with the backtest's capacity, target and start-up."""
    base_spec = config.policy.predictive if config.policy and config.policy.predictive else None
    fields: dict[str, object] = base_spec.model_dump() if base_spec else {"query": "demand"}
    startup = timedelta(seconds=config.startup)
    lead = base_spec.lead_time if base_spec else timedelta(minutes=5)
    fields.update(
        capacity_per_replica=config.capacity,
        target_utilization=config.target,
        startup=startup,
        lead_time=max(lead, startup),
    )
    if naive:
        fields.update(forecaster="seasonal-naive", max_error_ratio=1e9, headroom=0.0)
    elif base_spec is None:
        fields["forecaster"] = config.forecaster
    return scaling.Predictive.model_validate(fields)


def learned_schedule(minute: series.Series, first_week_end: int, config: Config, low: int) -> series.Array:
    """Without a policy file: the schedule an engineer would write from the first week, business hours
    at the median daily peak, the rest at the static minimum. Returns a floor per hour of day."""
    hours = minute.values[:first_week_end].reshape(-1, 60)
    with warnings.catch_warnings():  # an hour with no sample is NaN here, not a "mean of empty slice" warning
        warnings.simplefilter("ignore", RuntimeWarning)
        hourly = np.nanmean(hours, axis=1)
    start_hour = int((minute.start // 3600) % 24)
    by_hour = np.full(24, np.nan)
    for h in range(24):
        values = hourly[(np.arange(len(hourly)) + start_hour) % 24 == h]
        if np.any(~np.isnan(values)):
            by_hour[h] = np.nanmedian(values)
    floors = np.full(24, float(low))
    busy = by_hour >= 0.6 * np.nanmax(by_hour)
    if np.any(busy):
        need = math.ceil(float(np.nanmedian(by_hour[busy])) / (config.capacity * config.target))
        floors[busy] = max(low, need)
    return floors


class _Predictive:
    """One predictive strategy: outlook per refresh, the engine's decide per minute."""

    def __init__(self, spec: scaling.Predictive, forecaster: base.Forecaster, low: int, high: int) -> None:
        self.policy = scaling.ScalingPolicySpec(platform_ref="backtest", services=["svc"], predictive=spec)
        self.spec, self.forecaster = spec, forecaster
        self.state = decide.ServiceState("svc", low, high)
        self.memory = decide.Memory()
        self.outlook: predictive.Outlook | None = None

    def floor(self, demand: series.Series, now: float) -> int:
        if self.outlook is None or now - self.outlook.origin >= self.spec.refresh.total_seconds():
            history = demand.until(now).tail(self.spec.lookback.total_seconds())
            self.outlook = predictive.build_outlook(self.spec, self.forecaster, history, now, self.outlook)
        result = decide.decide(self.policy, self.state, self.outlook, datetime.fromtimestamp(now, UTC), self.memory)
        self.memory = result.memory
        return result.floor


def run(data: series.Series, config: Config) -> dict[str, object]:
    """Score every strategy on one trace; the JSON shape of ``walletctl backtest --json``.

    Demand is replayed minute by minute and the engine forecasts from that 1-minute history, as it
    would from Prometheus at a policy's default step, whatever the trace's own resolution."""
    minute = trace.per_minute(data)
    first_week = int(series.WEEK // 60)
    if len(minute) <= first_week + 60:
        raise errors.SpecError(
            [errors.Problem(path="--trace", message="must span more than one week: the first week is history only")]
        )
    demand = minute.values
    if not np.any(~np.isnan(demand[first_week:])):
        raise errors.SpecError(
            [
                errors.Problem(
                    path="--trace",
                    message="every minute after the first week (history only) is a gap: nothing to score",
                )
            ]
        )
    cap, target = config.capacity, config.target
    needed = np.ceil(np.nan_to_num(demand[first_week:]) / (cap * target))
    peak_needed = float(np.nanmax(needed))
    if not peak_needed <= MAX_REPLICAS:  # also catches inf and NaN
        raise errors.SpecError(
            [
                errors.Problem(
                    path="--capacity-per-replica",
                    message=f"{cap:g} per replica needs {peak_needed:g} replicas at the trace's peak; "
                    f"at most {MAX_REPLICAS} are simulated",
                )
            ]
        )
    low = config.service.min_replicas
    high = config.max_replicas or max(config.service.max_replicas, int(np.nanmax(needed)) + 1)
    simulators = {
        name: hpa.HpaSimulator(config.service.behavior, high, target, cap, config.startup, replicas=low)
        for name in ("reactive", "schedule", "predictive", "naive")
    }
    spec = predictive_spec(config)
    engines = {
        "predictive": _Predictive(spec, registry.FORECASTERS[spec.forecaster], low, high),
        "naive": _Predictive(predictive_spec(config, naive=True), registry.FORECASTERS["seasonal-naive"], low, high),
    }
    policy = config.policy if config.policy and config.policy.schedules else None
    hourly = None if policy else learned_schedule(minute, first_week, config, low)
    scores = {name: Score() for name in (*simulators, "static", "oracle")}
    static = max(low, int(np.nanmax(needed)))
    minutes = range(first_week - int(WARMUP // 60), len(minute))
    times = [minute.start + 60 * m for m in minutes]
    # The strategies' floors do not depend on what the HPA does (the engine reads no replica counts in
    # a backtest), so each strategy's floors are decided first, minute by minute, then replayed.
    floors: dict[str, list[int]] = {"reactive": [low] * len(times)}
    if policy is not None:
        floors["schedule"] = [
            max(low, schedule.schedule_floor(policy, datetime.fromtimestamp(now, UTC), policy.schedule_lead)[0])
            for now in times
        ]
    else:
        assert hourly is not None
        lead = config.startup + 300  # a human pre-scales a few minutes early
        floors["schedule"] = [
            int(max(hourly[int(now // 3600) % 24], hourly[int((now + lead) // 3600) % 24])) for now in times
        ]
    for name, engine in engines.items():
        floors[name] = [engine.floor(minute, now) for now in times]
    # Each HPA sync reads the demand of one scrape ago.
    stale = [
        demand[np.maximum(0, ((np.array(times) + tick * hpa.SYNC - SCRAPE_STALENESS - minute.start) // 60).astype(int))]
        .astype(float)
        .tolist()
        for tick in range(4)
    ]
    scored = [m >= first_week and not math.isnan(demand[m]) for m in minutes]
    values = demand[minutes.start :].tolist()
    for name, simulator in simulators.items():
        score, floor = scores[name], floors[name]
        sync, (stale0, stale1, stale2, stale3) = simulator.sync, stale
        for i, now in enumerate(times):  # four 15 s syncs per minute
            sync(now, stale0[i], floor[i])
            sync(now + hpa.SYNC, stale1[i], floor[i])
            sync(now + 2 * hpa.SYNC, stale2[i], floor[i])
            sync(now + 3 * hpa.SYNC, stale3[i], floor[i])
            if scored[i]:
                score.add(values[i], simulator.replicas, simulator.ready(now + 30), cap)
    scored_demand = [value for value, ok in zip(values, scored, strict=True) if ok]
    for value in scored_demand:
        need = max(1, math.ceil(value / (cap * target)))
        scores["oracle"].add(value, need, min(need, high), cap)
        scores["static"].add(value, static, static, cap)
    for name, simulator in simulators.items():
        scores[name].actions = simulator.actions
    scores["oracle"].actions = int(np.count_nonzero(np.diff(needed[~np.isnan(demand[first_week:])])))
    oracle_hours = scores["oracle"].replica_minutes / 60
    return {
        "strategies": {name: score.as_dict(len(scored_demand), oracle_hours) for name, score in scores.items()},
        "meta": {
            "capacity_per_replica": round(cap, 4),
            "target": target,
            "startup_s": config.startup,
            "minutes_scored": len(scored_demand),
            "forecaster": engines["predictive"].spec.forecaster,
            "lead_time_s": engines["predictive"].spec.lead_time.total_seconds(),
            "refresh_s": engines["predictive"].spec.refresh.total_seconds(),
            "service": config.service.name,
            "min_replicas": low,
            "max_replicas": high,
            "trace_step_s": data.step,
        },
        "_series": {"demand": scored_demand} | {name: score.ready_capacity for name, score in scores.items()},
    }
