"""Decision benchmark: ``python tests/benchmarks/bench_decision.py [--repeat 50]``.

One decision for one service the way the scaler makes it: from 14 days of 1-minute history (the
result of the one range query per refresh), build the outlook (forecast of the window, plus the replay
of the last two days that gates it) and decide the floor. Measured per forecaster: cold (the first
outlook after a start, replaying all 48 origins, and the decision), refresh (an outlook built 10 minutes
after the previous one, which replays only origins that are new, and the decision: every refresh after
the first) and warm (decision from a cached outlook, what every tick between refreshes costs).
The history is synthetic (daily and weekly shape, noise, a few gaps), seeded. Prints one line per
forecaster and one JSON object as the last line; the issue's budget is 20 ms per cold decision."""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "operator"))

from walletplatform.forecast import registry, series  # noqa: E402
from walletplatform.models import scaling  # noqa: E402
from walletplatform.scaling import decide, predictive  # noqa: E402

NOW = datetime(2026, 11, 16, 8, 55, tzinfo=UTC)


def history(days: int = 15, seed: int = 7) -> series.Series:
    """``days`` of history ending one day after NOW, so refreshes can move forward through the last day."""
    rng = np.random.default_rng(seed)
    minutes = days * 1440
    t = np.arange(minutes) * 60.0
    start = NOW.timestamp() + series.DAY - minutes * 60
    hour = ((start + t) % series.DAY) / 3600
    weekday = ((start + t) // series.DAY + 3) % 7  # 1970-01-01 was a Thursday
    daily = 40 + 160 * np.exp(-(((hour - 12) / 3.5) ** 2))
    values = daily * np.where(weekday >= 5, 0.6, 1.0) * rng.lognormal(0, 0.15, minutes)
    values[rng.choice(minutes, 300, replace=False)] = np.nan
    return series.Series(start, 60.0, values)


def policy(forecaster: str) -> scaling.ScalingPolicySpec:
    return scaling.ScalingPolicySpec.model_validate(
        {
            "platformRef": "bench",
            "services": ["transaction"],
            "predictive": {
                "query": "sum(rate(http_requests_total[5m]))",
                "capacityPerReplica": 20,
                "lookback": "14d",
                "forecaster": forecaster,
            },
        }
    )


def milliseconds(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": round(1000 * statistics.median(ordered), 2),
        "p95_ms": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 2),
        "max_ms": round(1000 * ordered[-1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    full = history()
    state = decide.ServiceState("transaction", 2, 30, current_floor=2)
    results: dict[str, object] = {"history_points": 14 * 1440, "repeat": args.repeat}
    for name, forecaster in registry.FORECASTERS.items():
        spec = policy(name)
        assert spec.predictive is not None
        cold, refresh, warm = [], [], []
        previous = None
        for k in range(args.repeat):
            now = NOW + timedelta(minutes=10 * k)
            data = full.until(now.timestamp()).tail(spec.predictive.lookback.total_seconds())
            begin = time.perf_counter()
            outlook = predictive.build_outlook(spec.predictive, forecaster, data, now.timestamp())
            decision = decide.decide(spec, state, outlook, now)
            cold.append(time.perf_counter() - begin)
            begin = time.perf_counter()
            outlook = predictive.build_outlook(spec.predictive, forecaster, data, now.timestamp(), previous)
            decide.decide(spec, state, outlook, now)
            refresh.append(time.perf_counter() - begin)
            previous = outlook
            begin = time.perf_counter()
            decide.decide(spec, state, outlook, now + timedelta(seconds=30))
            warm.append(time.perf_counter() - begin)
        measured = {
            "cold": milliseconds(cold),
            "refresh": milliseconds(refresh[1:]),
            "warm": milliseconds(warm),
            "floor": decision.floor,
        }
        results[name] = measured
        figures = "  ".join(f"{kind} {measured[kind]}" for kind in ("cold", "refresh", "warm"))
        print(f"{name:17} {figures}", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
