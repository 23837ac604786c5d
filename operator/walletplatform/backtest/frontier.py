"""The risk/cost frontier of each strategy on one trace, at one fixed capacity per replica.

A single operating point hides the trade-off: a strategy that saturates fewer minutes may just hold
more replicas. So the HPA target is swept for reactive HPA, and target and headroom for the
predictive and naive floors; each point is one replay (saturated minutes, replica-hours). A strategy's
curve is its Pareto front: the points no cheaper point of the same strategy beats on saturation.
The question a team asks is then answered directly: at the saturation reactive HPA reaches at our
current target, how many replica-hours does each other strategy need?"""

from __future__ import annotations

import concurrent.futures
import dataclasses

from walletplatform.backtest import run, workers
from walletplatform.forecast import registry, series

TARGETS = (0.5, 0.6, 0.7, 0.8, 0.9)
HEADROOMS = (0.0, 0.1, 0.2, 0.3)
SWEPT = ("reactive", "predictive", "naive")


@dataclasses.dataclass(frozen=True)
class Point:
    strategy: str
    target: float
    headroom: float | None  # None for reactive HPA, which has no floor
    saturated_minutes: int
    replica_hours: float

    def beats(self, other: Point) -> bool:
        """Better on one figure and no worse on the other."""
        no_worse = self.saturated_minutes <= other.saturated_minutes and self.replica_hours <= other.replica_hours
        return no_worse and (
            self.saturated_minutes < other.saturated_minutes or self.replica_hours < other.replica_hours
        )

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def pareto(points: list[Point]) -> list[Point]:
    """The points of one strategy that no other point of it beats, cheapest first."""
    front: list[Point] = []
    for point in sorted(points, key=lambda p: (p.replica_hours, p.saturated_minutes)):
        if not front or point.saturated_minutes < front[-1].saturated_minutes:
            front.append(point)
    return front


def cheapest_within(points: list[Point], saturated_minutes: int) -> Point | None:
    """The fewest replica-hours among ``points`` that saturate at most ``saturated_minutes``."""
    within = [p for p in points if p.saturated_minutes <= saturated_minutes]
    return min(within, key=lambda p: (p.replica_hours, p.saturated_minutes)) if within else None


def sweep(
    data: series.Series,
    config: run.Config,
    targets: tuple[float, ...] = TARGETS,
    headrooms: tuple[float, ...] = HEADROOMS,
    jobs: int | None = None,
) -> dict[str, object]:
    """Every strategy's points, fronts and the comparison at the team's current target (``config.target``)."""
    replay = run.prepare(data)
    targets = tuple(sorted({*targets, config.target}))
    low = config.service.min_replicas
    sized = {}
    for target in targets:
        at_target = dataclasses.replace(config, target=target)
        sized[target] = (at_target, run.max_replicas(at_target, run.needed_replicas(replay, config.capacity, target)))
    with workers.Workers(replay, jobs) as pool:
        replayed: list[tuple[str, float, float | None, concurrent.futures.Future[run.Score]]] = [
            ("reactive", target, None, pool.submit(run.simulate, at, [low] * len(replay.times), high))
            for target, (at, high) in sized.items()
        ]
        decided = []
        grid = [(target, headroom) for target in targets for headroom in headrooms]
        for strategy, naive in (("predictive", False), ("naive", True)):
            specs = [(run.predictive_spec(sized[t][0], naive=naive, headroom=h), sized[t][1]) for t, h in grid]
            forecaster = registry.FORECASTERS[specs[0][0].forecaster]
            decided.append((strategy, pool.submit(run.engine_floors, specs, forecaster, low)))
        for strategy, future in decided:
            for (target, headroom), floors in zip(grid, future.result(), strict=True):
                at, high = sized[target]
                replayed.append((strategy, target, headroom, pool.submit(run.simulate, at, floors, high)))
        points = [_point(strategy, target, headroom, score.result()) for strategy, target, headroom, score in replayed]
    return summarise(points, config.target, len(replay.scored_demand))


def _point(strategy: str, target: float, headroom: float | None, score: run.Score) -> Point:
    return Point(strategy, target, headroom, score.saturated_minutes, round(score.replica_minutes / 60, 1))


def summarise(points: list[Point], current_target: float, minutes_scored: int) -> dict[str, object]:
    """Fronts, the replica-hours each strategy needs at reactive HPA's saturation at the current target,
    and every point of another strategy's front that the predictive front does not match."""
    by_strategy = {name: [p for p in points if p.strategy == name] for name in SWEPT}
    fronts = {name: pareto(found) for name, found in by_strategy.items()}
    reference = next(p for p in by_strategy["reactive"] if p.target == current_target)
    at_reference = {}
    for name, found in by_strategy.items():
        best = cheapest_within(found, reference.saturated_minutes)
        at_reference[name] = (
            None
            if best is None
            else {
                "replica_hours": best.replica_hours,
                "vs_reactive_pct": round(100 * (best.replica_hours / reference.replica_hours - 1), 1),
                "saturated_minutes": best.saturated_minutes,
                "target": best.target,
                "headroom": best.headroom,
            }
        )
    # Where the predictive curve is not on or below another: a point of that curve which no predictive
    # point matches, i.e. every predictive point that saturates no more needs more replica-hours.
    worse = []
    for name in ("reactive", "naive"):
        for other in fronts[name]:
            best = cheapest_within(by_strategy["predictive"], other.saturated_minutes)
            if best is None or best.replica_hours > other.replica_hours:
                worse.append(
                    {
                        "than": other.as_dict(),
                        "predictive_replica_hours": None if best is None else best.replica_hours,
                    }
                )
    return {
        "points": [p.as_dict() for p in points],
        "fronts": {name: [p.as_dict() for p in front] for name, front in fronts.items()},
        "at_reactive_current": {"reference": reference.as_dict(), "strategies": at_reference},
        "predictive_not_on_or_below": worse,
        "dominated_predictive_points": [
            p.as_dict() for p in fronts["predictive"] if any(q.beats(p) for q in points if q.strategy != "predictive")
        ],
        "meta": {"minutes_scored": minutes_scored, "current_target": current_target},
    }
