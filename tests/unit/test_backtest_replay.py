"""The backtest replay gives the figures it gave before it was made fast: a seeded trace (a daily
peak, noise, bursts, a day-long outage that leaves replays unscored) against the figures of commit
ad48a41, the last one before the speed-up; and the pieces the speed-up rests on, each against the
plain computation it replaces."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
from walletplatform import catalog
from walletplatform.backtest import hpa, run, trace, workers
from walletplatform.forecast import series
from walletplatform.models import scaling
from walletplatform.scaling import predictive

from tests.unit.test_scaling import Counting

# strategy: [saturated minutes, replica-hours, HPA actions], as commit ad48a41 computed them
BEFORE_SPEED_UP = {
    "seasonal-profile": {
        "reactive": [30, 3748.1, 1037],
        "schedule": [26, 3761.2, 934],
        "predictive": [13, 3814.9, 752],
        "naive": [16, 3888.5, 1316],
        "static": [0, 13644.0, 0],
        "oracle": [0, 1799.9, 13518],
    },
    "seasonal-naive": {
        "reactive": [30, 3748.1, 1037],
        "schedule": [26, 3761.2, 934],
        "predictive": [13, 3987.9, 1522],
        "naive": [16, 3888.5, 1316],
        "static": [0, 13644.0, 0],
        "oracle": [0, 1799.9, 13518],
    },
}


def seeded_trace() -> series.Series:
    rng = np.random.default_rng(5)
    minutes = 24 * 1440
    t = np.arange(minutes) * 60.0
    hour = (t % 86400) / 3600
    values = (30 + 170 * np.exp(-(((hour - 13) / 3) ** 2))) * rng.lognormal(0, 0.2, minutes)
    burst = rng.choice(minutes, 60, replace=False)
    values[burst] *= 2.5
    values[10 * 1440 : 11 * 1440 + 300] = np.nan  # a day-long outage: replays around it cannot be scored
    return series.Series(1_700_000_000.0, 60.0, values)


@pytest.mark.parametrize("forecaster", sorted(BEFORE_SPEED_UP))
def test_replay_figures_are_those_before_the_speed_up(forecaster: str) -> None:
    data = seeded_trace()
    capacity = run.capacity_for_peak(data, 20, 0.7)
    service = catalog.load_catalog()["transaction"]
    result = run.run(data, run.Config(service=service, capacity=capacity, forecaster=forecaster))  # type: ignore[arg-type]
    figures = {
        name: [score["saturated_minutes"], score["replica_hours"], score["actions"]]
        for name, score in result["strategies"].items()  # type: ignore[attr-defined]
    }
    assert figures == BEFORE_SPEED_UP[forecaster]


def test_outlook_peaks_are_the_first_highest_forecast_of_each_window() -> None:
    rng = np.random.default_rng(3)
    values = rng.integers(0, 5, 40).astype(float)  # ties, so "first highest" matters
    values[rng.choice(40, 12, replace=False)] = np.nan
    values[20:27] = np.nan  # a window with nothing at all
    outlook = predictive.Outlook(0.0, 60.0, values, 0.0, (), "x", 0.0)
    for width in (1, 3, 7):
        for first in range(45):
            window = values[first : first + width]
            expected = None
            if window.size and not np.all(np.isnan(window)):
                index = int(np.nanargmax(window))
                expected = (first + index, float(window[index]))
            assert outlook.peak(first, width) == expected, (first, width)


def test_origins_a_gap_left_unscored_are_not_replayed_again_by_the_next_refresh() -> None:
    spec = scaling.Predictive(query="x", capacity_per_replica=10)
    data = seeded_trace()
    now = data.start + 11 * 86400 + 6 * 3600  # the outage ended an hour ago: most recent origins are unscored
    forecaster = Counting()
    first = predictive.build_outlook(spec, forecaster, data.until(now), now)
    assert len(first.unscored) > 20 and len(first.replays) + len(first.unscored) == predictive.REPLAY_ORIGINS
    forecaster.calls = 0
    later = now + 600
    second = predictive.build_outlook(spec, forecaster, data.until(later), later, first)
    assert forecaster.calls == 1  # the window's forecast only: no origin is new and none is retried
    assert (second.replays, second.unscored) == (first.replays, first.unscored)


@pytest.mark.parametrize("replicas", [0, 1, 2, 7, 20])
def test_raw_desired_is_the_simulators_own_arithmetic(replicas: int) -> None:
    rng = np.random.default_rng(replicas)
    capacity, target = 10.0, 0.7
    # around the count's own demand (the tolerance's edges) and far from it, NaN and zero included
    centre = max(1, replicas) * capacity * target
    demand = np.concatenate([centre * rng.uniform(0.8, 1.2, 4000), rng.uniform(0, 400, 1000), [np.nan, 0.0]])
    behavior = catalog.load_catalog()["transaction"].behavior
    simulator = hpa.HpaSimulator(behavior, 50, target, capacity, 120.0, replicas=replicas)  # every pod ready
    expected = [simulator._raw_desired(0.0, value) for value in demand.tolist()]
    assert hpa.raw_desired(demand, replicas, capacity, target).tolist() == expected
    held = sum(value == replicas for value in expected)
    assert replicas == 0 or 0 < held < len(expected)  # both outcomes are exercised (none ready: all hold)


def noisy_minutes() -> series.Series:
    """The seeded trace at 1-minute resolution with its noise doubled: the count moves every few minutes."""
    data = seeded_trace()
    return series.Series(data.start, data.step, data.values * np.random.default_rng(8).lognormal(0, 0.2, len(data)))


@pytest.mark.parametrize("trace_name", ["30-minute buckets", "noisy minutes"])
def test_quiet_stretches_passed_in_one_step_score_as_sync_by_sync(
    monkeypatch: pytest.MonkeyPatch, trace_name: str
) -> None:
    data = seeded_trace()
    if trace_name == "30-minute buckets":  # as the taxi trace: the count holds for hours
        data = series.Series(data.start, 1800.0, data.values[::30])
    else:
        data = noisy_minutes()
    replay = run.prepare(trace.per_minute(data))
    service = catalog.load_catalog()["transaction"]
    config = run.Config(service=service, capacity=run.capacity_for_peak(data, 20, 0.7))
    floors = [1 + (m // 97) % 4 for m in range(len(replay.times))]  # a floor that changes now and then
    passes: list[int] = []
    pass_quiet = hpa.HpaSimulator.pass_quiet
    monkeypatch.setattr(
        hpa.HpaSimulator,
        "pass_quiet",
        lambda self, start, desired: passes.append(len(desired)) or pass_quiet(self, start, desired),
    )
    for minute_floors in ([service.min_replicas] * len(replay.times), floors):
        fast = run.simulate(replay, config, minute_floors, 40)
        skipped = sum(passes) // 4
        monkeypatch.setattr(run, "SKIP_MIN_MINUTES", len(replay.times) + 1)  # never skip: sync by sync
        slow = run.simulate(replay, config, minute_floors, 40)
        monkeypatch.setattr(run, "SKIP_MIN_MINUTES", 4)
        # stretches were passed, and only in the fast run: over half of all minutes
        assert skipped > len(replay.times) // 2 and sum(passes) // 4 == skipped
        passes.clear()
        assert dataclasses.asdict(fast) == dataclasses.asdict(slow)
        assert fast.actions > 100


def test_a_quiet_stretch_is_not_searched_at_times_off_the_second() -> None:
    data = noisy_minutes()
    replay = run.prepare(trace.per_minute(series.Series(data.start + 0.5, data.step, data.values)))
    assert not replay.whole_seconds and run.prepare(trace.per_minute(data)).whole_seconds


def test_replays_in_parallel_give_the_figures_of_one_process() -> None:
    data = series.Series(seeded_trace().start, 60.0, seeded_trace().values[: 10 * 1440])
    service = catalog.load_catalog()["transaction"]
    config = run.Config(service=service, capacity=run.capacity_for_peak(data, 20, 0.7))
    for jobs in (1, 3):
        with workers.Workers(None, jobs) as pool:
            # one job, or other threads that a fork could catch holding a lock: in this process
            assert (pool._pool is None) == (jobs == 1 or threading.active_count() > 1)
    assert run.run(data, config, jobs=1) == run.run(data, config, jobs=3)


def _fails(shared: object, message: str) -> None:
    raise ValueError(message)


@pytest.mark.parametrize("cores", [1, 2])
def test_a_call_that_fails_in_a_worker_raises_from_its_result(cores: int) -> None:
    with workers.Workers(None, count=cores) as pool:
        future = pool.submit(_fails, "no")
        with pytest.raises(ValueError, match="no"):
            future.result()


def test_no_fork_while_another_thread_runs() -> None:
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        with workers.Workers(None, 2) as pool:
            assert pool._pool is None
            assert pool.submit(lambda shared, x: x + 1, 1).result() == 2
    finally:
        release.set()
        other.join()


def test_strategies_with_the_same_floors_share_one_replay(monkeypatch: pytest.MonkeyPatch) -> None:
    data = series.Series(seeded_trace().start, 60.0, seeded_trace().values[: 10 * 1440])
    service = catalog.load_catalog()["transaction"]
    config = run.Config(service=service, capacity=run.capacity_for_peak(data, 20, 0.7))
    replayed: list[list[int]] = []
    simulate = run.simulate
    monkeypatch.setattr(run, "simulate", lambda replay, *args: replayed.append(args[1]) or simulate(replay, *args))
    baseline = run.run(data, config, jobs=1)
    assert len(replayed) == 4 and replayed[0] != replayed[1]  # the learned schedule differs from reactive's
    replayed.clear()
    # A learned schedule at the static minimum throughout: the floors reactive HPA replays.
    monkeypatch.setattr(run, "learned_schedule", lambda *_: np.full(24, float(service.min_replicas)))
    result = run.run(data, config, jobs=1)
    assert len(replayed) == 3 and [service.min_replicas] * len(replayed[0]) == replayed[0]
    strategies = result["strategies"]
    assert strategies["schedule"] == strategies["reactive"] == baseline["strategies"]["reactive"]  # type: ignore[index]
    assert strategies["predictive"] == baseline["strategies"]["predictive"]  # type: ignore[index]


@pytest.mark.parametrize("name", sorted(catalog.load_catalog()))
def test_quiet_stretches_hold_for_every_catalog_behaviour_clamps_and_floors(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Each service's windows and rate limits (a count of 9 that 10% of it cannot lower), a maxReplicas
    the demand often wants more than (the count clamped there) and floors that jump up and back."""
    data = noisy_minutes()
    data = series.Series(data.start, data.step, data.values[: 10 * 1440])
    replay = run.prepare(data)
    service = catalog.load_catalog()[name]
    config = run.Config(service=service, capacity=run.capacity_for_peak(data, 40, 0.7))
    choices = [service.min_replicas, service.min_replicas, 4, 8]
    floors = np.repeat(np.random.default_rng(4).choice(choices, len(replay.times) // 97 + 1), 97)
    minute_floors = floors[: len(replay.times)].tolist()
    passes: list[int] = []
    pass_quiet = hpa.HpaSimulator.pass_quiet
    monkeypatch.setattr(
        hpa.HpaSimulator,
        "pass_quiet",
        lambda self, start, desired: passes.append(len(desired)) or pass_quiet(self, start, desired),
    )
    fast = run.simulate(replay, config, minute_floors, 12)
    skipped = sum(passes) // 4
    monkeypatch.setattr(run, "SKIP_MIN_MINUTES", len(replay.times) + 1)  # never skip: sync by sync
    slow = run.simulate(replay, config, minute_floors, 12)
    assert dataclasses.asdict(fast) == dataclasses.asdict(slow)
    at_most = [capacity for capacity in fast.ready_capacity if capacity == 12 * config.capacity]
    assert fast.actions > 30 and len(at_most) > 500  # it moved, and was clamped at maxReplicas for hours
    assert skipped > len(replay.times) // 2
