"""Each forecaster on synthetic series with known answers, and the HPA simulator's rules."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from walletplatform import catalog
from walletplatform.backtest import hpa
from walletplatform.forecast import registry, series


def weekly(weeks: int, step: float = 300.0) -> series.Series:
    t = np.arange(int(weeks * series.WEEK / step)) * step
    day = 100 + 50 * np.sin(2 * np.pi * t / series.DAY)
    weekend = np.where((t // series.DAY) % 7 >= 5, 0.5, 1.0)
    return series.Series(0.0, step, day * weekend)


@pytest.mark.parametrize("name", sorted(registry.FORECASTERS), ids=str)
def test_forecasters_recover_a_clean_seasonal_series(name: str) -> None:
    full = weekly(3)
    history = full.until(full.start + 20 * series.DAY)
    predicted = registry.FORECASTERS[name].forecast(history, 24)
    actual = full.values[len(history) : len(history) + 24]
    tolerance = 0.25 if name == "holt-winters" else 0.1  # HW has no weekly season
    assert np.nanmax(np.abs(predicted - actual) / actual) < tolerance


@pytest.mark.parametrize("name", sorted(registry.FORECASTERS), ids=str)
def test_forecasters_start_after_a_first_day_without_data(name: str) -> None:
    full = weekly(3)
    values = full.values.copy()
    values[: int(1.5 * series.DAY / full.step)] = np.nan  # the metric did not exist yet
    history = series.Series(full.start, full.step, values[: int(20 * series.DAY / full.step)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice" on the user's terminal
        predicted = registry.FORECASTERS[name].forecast(history, 24)
    actual = full.values[len(history) : len(history) + 24]
    assert np.nanmax(np.abs(predicted - actual) / actual) < (0.25 if name == "holt-winters" else 0.1)


def test_seasonal_naive_is_last_week() -> None:
    history = series.Series(0.0, 3600.0, np.arange(24 * 8, dtype=np.float64))
    predicted = registry.FORECASTERS["seasonal-naive"].forecast(history, 3)
    assert list(predicted) == [24 * 1, 24 * 1 + 1, 24 * 1 + 2]


@pytest.mark.parametrize("q", [0.0, 0.1, 0.5, 0.75, 0.99, 1.0])
def test_column_quantiles_match_numpy_and_skip_nan(q: float) -> None:
    rng = np.random.default_rng(3)
    samples = rng.normal(100, 30, size=(31, 40))
    samples[rng.random(samples.shape) < 0.4] = np.nan
    samples[:, 0] = np.nan  # a column with no data at all stays unknown
    samples[1:, 1] = np.nan  # a single sample is its own quantile
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanquantile(samples, q, axis=0)
    result = series.column_quantiles(samples, q)
    assert np.isnan(result[0]) and result[1] == samples[0, 1]
    np.testing.assert_allclose(result, expected, equal_nan=True)


def test_column_quantiles_take_one_quantile_per_column() -> None:
    rng = np.random.default_rng(4)
    samples = rng.normal(100, 30, size=(31, 12))
    samples[rng.random(samples.shape) < 0.3] = np.nan
    q = np.linspace(0, 1, 12)
    each = [series.column_quantiles(samples[:, [k]], float(q[k]))[0] for k in range(12)]
    assert series.column_quantiles(samples, q).tolist() == each  # the same numbers, not just close


def test_profile_follows_level_shift_and_skips_gaps() -> None:
    full = weekly(3)
    values = full.values.copy()
    cut = int(20 * series.DAY / full.step)
    values[cut - 6 : cut] *= 1.4  # the last half hour is 40% busier than usual
    values[cut - 300 : cut - 200] = np.nan  # a gap is not zero demand
    history = series.Series(full.start, full.step, values[:cut])
    predicted = registry.FORECASTERS["seasonal-profile"].forecast(history, 6)
    assert np.all(predicted > full.values[cut : cut + 6] * 1.2)


def test_hpa_scales_up_with_policies_and_down_after_window() -> None:
    behavior = catalog.load_catalog()["transaction"].behavior
    sim = hpa.HpaSimulator(behavior, max_replicas=50, target=0.7, capacity=10, startup=120, replicas=3)
    for tick in range(2):
        sim.sync(tick * 15, demand=200.0, min_replicas=3)
    assert sim.replicas == 8  # +5 pods (more than +50%) in the first 30 s period
    sim.sync(30, demand=200.0, min_replicas=3)
    assert sim.replicas == 13  # the next period allows +5 again (more than +50% of 8)
    for tick in range(3, 60):
        sim.sync(tick * 15, demand=200.0, min_replicas=3)
    assert sim.replicas == 29  # ceil(200 / (10 * 0.7))
    for tick in range(60, 70):
        sim.sync(tick * 15, demand=20.0, min_replicas=3)
    assert sim.replicas == 29  # scale-down stabilisation window of 300 s
    sim.sync(60 * 15 + 301, demand=20.0, min_replicas=3)
    assert sim.replicas == 27  # then at most -10% per minute


def test_hpa_jumps_to_a_raised_min_and_tolerates_ten_percent() -> None:
    behavior = catalog.load_catalog()["transaction"].behavior
    sim = hpa.HpaSimulator(behavior, max_replicas=50, target=0.7, capacity=10, startup=120, replicas=3)
    sim.sync(0, demand=22.0, min_replicas=3)  # 22/30 = 0.73 -> ratio 1.05, within tolerance
    assert sim.replicas == 3
    sim.sync(15, demand=22.0, min_replicas=12)
    assert sim.replicas == 12 and sim.ready(15) == 3 and sim.ready(15 + 120) == 12


@pytest.mark.parametrize("name", ["seasonal-profile", "seasonal-naive"])
def test_a_peak_that_starts_at_a_set_time_is_forecast_from_its_first_minute(name: str) -> None:
    """A daily step (50 -> 350 at 07:00 for an hour): the forecast of the step's first minutes is the
    peak, so a floor covering them is in place lead + start-up before it (a smoothed step is late)."""
    minutes = np.arange(3 * 7 * 1440)
    demand = np.where((minutes % 1440 >= 420) & (minutes % 1440 < 480), 350.0, 50.0)
    cut = 20 * 1440 + 420 - 7  # 7 minutes (lead 5 m + start-up 2 m) before the peak
    predicted = registry.FORECASTERS[name].forecast(series.Series(0.0, 60.0, demand[:cut]), 17)
    assert np.all(predicted[7:] >= 350)


def _windows_by_brute_force(history: list[tuple[float, int]], now: float, up: float, down: float) -> tuple[int, int]:
    """The controller's own rule: the minimum of every recommendation in the scale-up window and the
    maximum of every one in the scale-down window (the simulator keeps only candidates)."""
    return (
        min(value for at, value in history if now - at <= up),
        max(value for at, value in history if now - at <= down),
    )


@pytest.mark.parametrize("seed", range(5))
def test_hpa_stabilisation_windows_match_every_recommendation_kept(seed: int) -> None:
    behavior = catalog.load_catalog()["transaction"].behavior
    up = behavior.scale_up.stabilization_window_seconds
    down = behavior.scale_down.stabilization_window_seconds
    rng = np.random.default_rng(seed)
    sim = hpa.HpaSimulator(behavior, max_replicas=40, target=0.7, capacity=10, startup=120, replicas=3)
    history: list[tuple[float, int]] = []
    for tick in range(2000):
        now = tick * hpa.SYNC
        demand = float(rng.choice([rng.uniform(0, 300), 100.0, np.nan], p=[0.6, 0.3, 0.1]))
        desired = sim._raw_desired(now, demand)  # the recommendation this sync records
        history.append((now, desired))
        sim.sync(now, demand, min_replicas=int(rng.choice([2, 3, 8])))
        assert (sim.lows[0][1], sim.highs[0][1]) == _windows_by_brute_force(history, now, up, down)
        assert sim.ready(now + 1e9) == sim.replicas and sim.pods == sorted(sim.pods)


@pytest.mark.parametrize(
    ("values", "expected"),
    [([], 0.0), ([np.nan, np.nan], 0.0), ([np.nan, 2.0, np.nan], 120.0), ([1.0, np.nan, 3.0], 180.0)],
)
def test_history_covers_from_its_first_usable_sample(values: list[float], expected: float) -> None:
    assert series.Series(0.0, 60.0, np.array(values, dtype=np.float64)).covered() == expected
