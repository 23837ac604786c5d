"""Replay one trace through every strategy and score it.

The first week is history only. Every minute each strategy sets the HPA's minReplicas; the simulated
HPA syncs every 15 s on metrics one scrape stale. A minute is saturated when its demand exceeds the
capacity of the pods that are ready. The predictive strategy runs the engine's own ``decide`` on an
outlook rebuilt every ``refresh`` from the history before that instant."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import itertools
import math
import warnings
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from walletplatform.backtest import hpa, trace, workers
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
    floors: list[int] = dataclasses.field(default_factory=list)

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


def predictive_spec(config: Config, naive: bool = False, headroom: float | None = None) -> scaling.Predictive:
    """The policy's predictive settings with the backtest's capacity, target and start-up (and
    ``headroom`` when given: the frontier sweeps it)."""
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
    if headroom is not None:
        fields["headroom"] = headroom
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


@dataclasses.dataclass(frozen=True)
class Replay:
    """A trace made ready to replay: its minutes from an hour before the first scored one, the demand
    each of the minute's four HPA syncs reads (one scrape stale), and which minutes are scored."""

    minute: series.Series
    first_week: int
    times: list[float]
    stale: tuple[list[float], list[float], list[float], list[float]]
    syncs: series.Array  # the same demand as one matrix (minute, sync), for the quiet-stretch search
    scored: list[bool]
    values: list[float]
    whole_seconds: bool  # every sync falls on a whole second: the quiet-stretch search is exact
    _memo: dict[tuple[object, ...], object] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    @property
    def scored_demand(self) -> list[float]:
        return [value for value, ok in zip(self.values, self.scored, strict=True) if ok]

    def scored_between(self, first: int, end: int) -> tuple[int, series.Array]:
        """How many minutes of [first, end) are scored, and the demand of those (NaN for the others)."""
        if ("scored",) not in self._memo:
            self._memo[("scored",)] = (
                np.concatenate([[0], np.cumsum(self.scored)]).tolist(),
                np.where(self.scored, self.values, np.nan),
            )
        scored: tuple[list[int], series.Array] = self._memo[("scored",)]  # type: ignore[assignment]
        counts, demand = scored
        return counts[end] - counts[first], demand[first:end]


def prepare(data: series.Series) -> Replay:
    """The replay of ``data`` at 1-minute resolution; SpecError when nothing of it can be scored."""
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
    minutes = range(first_week - int(WARMUP // 60), len(minute))
    times = [minute.start + 60 * m for m in minutes]
    at = np.array(times)
    syncs = np.stack(
        [
            demand[np.maximum(0, ((at + tick * hpa.SYNC - SCRAPE_STALENESS - minute.start) // 60).astype(int))]
            for tick in range(4)
        ],
        axis=1,
    )
    ticks = syncs.T.tolist()
    return Replay(
        minute,
        first_week,
        times,
        (ticks[0], ticks[1], ticks[2], ticks[3]),
        syncs,
        [m >= first_week and not math.isnan(demand[m]) for m in minutes],
        demand[minutes.start :].tolist(),
        float(minute.start).is_integer() and abs(times[-1]) < 2**52,
    )


def needed_replicas(replay: Replay, capacity: float, target: float) -> series.Array:
    """Replicas each scored-period minute needs at ``target``; SpecError beyond what is simulated."""
    needed = np.ceil(np.nan_to_num(replay.minute.values[replay.first_week :]) / (capacity * target))
    peak_needed = float(np.nanmax(needed))
    if not peak_needed <= MAX_REPLICAS:  # also catches inf and NaN
        raise errors.SpecError(
            [
                errors.Problem(
                    path="--capacity-per-replica",
                    message=f"{capacity:g} per replica needs {peak_needed:g} replicas at the trace's peak; "
                    f"at most {MAX_REPLICAS} are simulated",
                )
            ]
        )
    return needed


def max_replicas(config: Config, needed: series.Array) -> int:
    return config.max_replicas or max(config.service.max_replicas, int(np.nanmax(needed)) + 1)


def engine_floors(
    replay: Replay, specs: list[tuple[scaling.Predictive, int]], forecaster: base.Forecaster, low: int
) -> list[list[int]]:
    """The floor the engine's own ``decide`` sets every minute, for each (spec, maxReplicas). The specs
    differ only in sizing (target, headroom), which the forecast does not depend on: one outlook per
    refresh, made from the history before that instant, serves them all."""
    first = specs[0][0]
    refresh, lookback = first.refresh.total_seconds(), first.lookback.total_seconds()
    policies = [scaling.ScalingPolicySpec(platform_ref="backtest", services=["svc"], predictive=s) for s, _ in specs]
    states = [decide.ServiceState("svc", low, high) for _, high in specs]
    memories = [decide.Memory() for _ in specs]
    floors: list[list[int]] = [[] for _ in specs]
    outlook: predictive.Outlook | None = None
    for now in replay.times:
        if outlook is None or now - outlook.origin >= refresh:
            history = replay.minute.until(now).tail(lookback)
            outlook = predictive.build_outlook(first, forecaster, history, now, outlook)
        at = datetime.fromtimestamp(now, UTC)
        for k, policy in enumerate(policies):
            result = decide.decide(policy, states[k], outlook, at, memories[k])
            memories[k] = result.memory
            floors[k].append(result.floor)
    return floors


# Quiet stretches shorter than this many minutes are replayed sync by sync: passing them in one step
# costs more than it saves. Either way the figures are the same.
SKIP_MIN_MINUTES = 4


def quiet_until(
    replay: Replay, simulator: hpa.HpaSimulator, first: int, floors: npt.NDArray[np.int64], config: Config
) -> tuple[int, npt.NDArray[np.int64]]:
    """The first minute from ``first`` on (``len(times)`` when there is none) with a sync that may change
    the count of an HPA whose every pod is ready (``HpaSimulator.quiet_syncs``): the syncs before it
    only renew the windows. Returns it and those syncs' recommendations. Searched over a span that
    grows until it holds that minute."""
    n, replicas, span = len(replay.times), simulator.replicas, 16
    while True:
        stop = min(n, first + span)
        desired = hpa.raw_desired(replay.syncs[first:stop].ravel(), replicas, config.capacity, config.target)
        end = first + simulator.quiet_syncs(replay.times[first], desired, np.repeat(floors[first:stop], 4)) // 4
        if end < stop or stop == n:
            return end, desired[: 4 * (end - first)]
        span *= 4


def simulate(replay: Replay, config: Config, floors: list[int], high: int) -> Score:
    """Replay the HPA (at ``config.target``) with minReplicas following ``floors``; score the minutes.

    Where every pod is ready and the coming syncs cannot change the count under floors no higher
    (``quiet_until``), those minutes change nothing but the stabilisation windows: they are passed in
    one step (``HpaSimulator.pass_quiet``) and scored together, with the same figures as sync by sync."""
    simulator = hpa.HpaSimulator(
        config.service.behavior,
        high,
        config.target,
        config.capacity,
        config.startup,
        replicas=config.service.min_replicas,
    )
    score = Score()
    sync, (stale0, stale1, stale2, stale3) = simulator.sync, replay.stale
    times, scored, values, capacity = replay.times, replay.scored, replay.values, config.capacity
    floors_array = np.asarray(floors)
    i, n, retry, wait = 0, len(times), 0, 1
    while i < n:  # four 15 s syncs per minute
        now, floor = times[i], floors[i]
        sync(now, stale0[i], floor)
        sync(now + hpa.SYNC, stale1[i], floor)
        sync(now + 2 * hpa.SYNC, stale2[i], floor)
        sync(now + 3 * hpa.SYNC, stale3[i], floor)
        if scored[i]:
            score.add(values[i], simulator.replicas, simulator.ready(now + 30), capacity)
            score.floors.append(floor)
        i += 1
        replicas = simulator.replicas
        if i < retry or i == n or not replay.whole_seconds or floors[i] > replicas or not simulator.all_ready(times[i]):
            continue
        end, desired = quiet_until(replay, simulator, i, floors_array, config)
        if end - i < SKIP_MIN_MINUTES:
            # A search from any minute up to ``end`` would end there too; after a run of short stretches
            # (a count that moves every few minutes) the next search waits longer, up to an hour.
            retry, wait = end + wait, min(2 * wait, 64)
            continue
        wait = 1
        count, demand = replay.scored_between(i, end)
        ready_capacity = replicas * capacity
        score.replica_minutes += replicas * count
        score.saturated_minutes += int(np.count_nonzero(demand > ready_capacity))
        score.ready_capacity += [ready_capacity] * count
        score.floors += itertools.compress(floors[i:end], scored[i:end])
        simulator.pass_quiet(times[i], desired)
        i = end
    score.actions = simulator.actions
    return score


def run(data: series.Series, config: Config, jobs: int | None = None) -> dict[str, object]:
    """Score every strategy on one trace; the JSON shape of ``walletctl backtest --json``. ``jobs``:
    how many replays run at once (``workers.Workers``; the usable cores by default).

    Demand is replayed minute by minute and the engine forecasts from that 1-minute history, as it
    would from Prometheus at a policy's default step, whatever the trace's own resolution."""
    replay = prepare(data)
    cap, target = config.capacity, config.target
    needed = needed_replicas(replay, cap, target)
    low, high = config.service.min_replicas, max_replicas(config, needed)
    spec, naive_spec = predictive_spec(config), predictive_spec(config, naive=True)
    policy = config.policy if config.policy and config.policy.schedules else None
    # The strategies' floors do not depend on what the HPA does (the engine reads no replica counts in
    # a backtest), so each strategy's floors are decided first, minute by minute, then replayed.
    floors: dict[str, list[int]] = {"reactive": [low] * len(replay.times)}
    if policy is not None:
        floors["schedule"] = [
            max(low, schedule.schedule_floor(policy, datetime.fromtimestamp(now, UTC), policy.schedule_lead)[0])
            for now in replay.times
        ]
    else:
        hourly = learned_schedule(replay.minute, replay.first_week, config, low)
        lead = config.startup + 300  # a human pre-scales a few minutes early
        floors["schedule"] = [
            int(max(hourly[int(now // 3600) % 24], hourly[int((now + lead) // 3600) % 24])) for now in replay.times
        ]
    with workers.Workers(replay, jobs) as pool:
        decided = {
            pool.submit(engine_floors, [(s, high)], registry.FORECASTERS[s.forecaster], low): name
            for name, s in (("predictive", spec), ("naive", naive_spec))
        }
        replayed: dict[str, concurrent.futures.Future[Score]] = {}

        def replay_floors(name: str) -> None:
            """Replay ``name``'s floors, or reuse the replay of a strategy with the same floors (the
            learned schedule is often the static minimum throughout, as reactive HPA's is)."""
            same = next((other for other in replayed if floors[other] == floors[name]), None)
            replayed[name] = replayed[same] if same else pool.submit(simulate, config, floors[name], high)

        for name in ("reactive", "schedule"):
            replay_floors(name)
        for future in concurrent.futures.as_completed(decided):
            (floors[decided[future]],) = future.result()
            replay_floors(decided[future])
        scores = {name: replayed[name].result() for name in ("reactive", "schedule", "predictive", "naive")}
    scored_demand = replay.scored_demand
    static = max(low, int(np.nanmax(needed)))
    scores["static"], scores["oracle"] = Score(), Score()
    for value in scored_demand:
        need = max(1, math.ceil(value / (cap * target)))
        scores["oracle"].add(value, need, min(need, high), cap)
        scores["static"].add(value, static, static, cap)
    scores["oracle"].actions = int(
        np.count_nonzero(np.diff(needed[~np.isnan(replay.minute.values[replay.first_week :])]))
    )
    oracle_hours = scores["oracle"].replica_minutes / 60
    return {
        "strategies": {name: score.as_dict(len(scored_demand), oracle_hours) for name, score in scores.items()},
        "meta": {
            "capacity_per_replica": round(cap, 4),
            "target": target,
            "startup_s": config.startup,
            "minutes_scored": len(scored_demand),
            "forecaster": spec.forecaster,
            "lead_time_s": spec.lead_time.total_seconds(),
            "refresh_s": spec.refresh.total_seconds(),
            "service": config.service.name,
            "min_replicas": low,
            "max_replicas": high,
            "trace_step_s": data.step,
        },
        "_series": {
            "times": [now for now, ok in zip(replay.times, replay.scored, strict=True) if ok],
            "demand": scored_demand,
            "ready_capacity": {name: score.ready_capacity for name, score in scores.items()},
            "floors": {name: scores[name].floors for name in ("schedule", "predictive", "naive")},
        },
    }
