"""walletctl backtest: replay a demand history through every strategy and print the scores. The history
is a CSV file (``--trace``, columns chosen by name or index) or a range query against Prometheus
(``--prometheus``, through the same adapter the operator uses)."""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys
import time
from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from walletplatform import catalog
from walletplatform.backtest import frontier, run, trace, workers
from walletplatform.cli import io, plots
from walletplatform.forecast import series
from walletplatform.models import common, errors, resources, scaling
from walletplatform.scaling import demand as demand_history

# At most this many points of Prometheus history (a year at 1 minute is 525,600): the range queries
# are chunked by the adapter, but an unbounded --since/--step pair must not become millions of them.
MAX_PROMETHEUS_POINTS = 2_000_000
EXIT_SOURCE_TROUBLE = 1
MAX_JOBS = 64  # processes; more than any machine here has cores


def _check_flags(args: argparse.Namespace) -> None:
    """Every flag problem at once, before any work (SpecError: exit status 2)."""
    problems = []
    if (args.capacity_per_replica is None) == (args.peak_replicas is None):
        problems.append(errors.Problem(path="--capacity-per-replica/--peak-replicas", message="give exactly one"))
    if args.capacity_per_replica is not None and not args.capacity_per_replica > 0:
        problems.append(errors.Problem(path="--capacity-per-replica", message="must be > 0"))
    if args.jobs is not None and not 1 <= args.jobs <= MAX_JOBS:
        problems.append(errors.Problem(path="--jobs", message=f"must be in [1, {MAX_JOBS}]"))
    if args.peak_replicas is not None and not 1 <= args.peak_replicas <= run.MAX_REPLICAS:
        problems.append(errors.Problem(path="--peak-replicas", message=f"must be in [1, {run.MAX_REPLICAS}]"))
    if not 0 < args.target <= 1:
        problems.append(errors.Problem(path="--target", message="must be in (0, 1]"))
    if (args.trace is None) == (args.prometheus is None):
        problems.append(errors.Problem(path="--trace/--prometheus", message="give exactly one source of history"))
    if args.prometheus is None and (args.query or args.since):
        problems.append(errors.Problem(path="--query/--since", message="only with --prometheus"))
    if args.trace is None and (args.time_column is not None or args.value_column is not None):
        problems.append(errors.Problem(path="--time-column/--value-column", message="only with --trace"))
    if problems:
        raise errors.SpecError(problems)
    io.check_output("--plot", args.plot)


def cmd_backtest(args: argparse.Namespace) -> int:
    _check_flags(args)
    startup, zero_fill = _seconds("--startup", args.startup), _seconds("--zero-fill-max", args.zero_fill_max)
    if args.prometheus is not None:
        loaded = _from_prometheus(args)
        if isinstance(loaded, demand_history.Trouble):
            print(f"--prometheus: {args.prometheus}: {loaded}", file=sys.stderr)
            return EXIT_SOURCE_TROUBLE
        gaps = int(np.count_nonzero(np.isnan(loaded.values)))
        notes = [f"history from {args.prometheus}: {args.query} over {args.since or '30d'} at {args.step}"]
        if gaps:
            notes.append(f"{gaps} of {len(loaded)} points are gaps (no sample): skipped, not read as zero")
        native = loaded
    else:
        native, notes = _from_csv(args, zero_fill)
    if native.step < 60:
        notes.append(f"{native.step:g}s samples averaged to 1-minute rates")
    demand = trace.per_minute(native)  # what is replayed, sized and forecast from, as Prometheus would give it
    capacity = args.capacity_per_replica or run.capacity_for_peak(demand, args.peak_replicas, args.target)
    policy = _policy(args.policy, capacity) if args.policy else None
    services = catalog.load_catalog(args.catalog)
    if args.service not in services:
        known = ", ".join(sorted(services))
        raise errors.SpecError([errors.Problem(path="--service", message=f"{args.service!r} is not one of {known}")])
    service = services[args.service]
    config = run.Config(
        service=service,
        capacity=capacity,
        target=args.target,
        startup=startup,
        policy=policy,
        forecaster=args.forecaster,
    )
    if args.frontier:
        return _frontier(args, demand, config, notes)
    result = run.run(demand, config, jobs=args.jobs)
    curves = result.pop("_series")
    result["meta"]["trace_notes"] = notes  # type: ignore[index]
    result["meta"]["trace_step_s"] = native.step  # type: ignore[index]
    if args.plot:
        zone = policy.time_zone if policy is not None else (args.timezone or "UTC")
        plots.replay(args.plot, curves, args.show, capacity, ZoneInfo(zone))  # type: ignore[arg-type]
    if args.json:
        print(json.dumps(_finite(result), allow_nan=False))
        return 0
    print(f"{'strategy':<12}{'saturated %':>12}{'replica-h':>12}{'vs oracle':>11}{'actions':>9}")
    for name, score in result["strategies"].items():  # type: ignore[attr-defined]
        print(
            f"{name:<12}{score['saturated_pct']:>12.3f}{score['replica_hours']:>12.1f}"
            f"{score['replica_hours_vs_oracle']:>11.3f}{score['actions']:>9}"
        )
    print(json.dumps(_finite(result["meta"]), allow_nan=False))
    return 0


def _frontier(args: argparse.Namespace, demand: series.Series, config: run.Config, notes: list[str]) -> int:
    result = frontier.sweep(demand, config, args.targets, args.headrooms, jobs=args.jobs)
    result["meta"] |= {"capacity_per_replica": round(config.capacity, 4), "trace_notes": notes}  # type: ignore[operator]
    if args.plot:
        plots.frontier(args.plot, result)
    if args.json:
        print(json.dumps(_finite(result), allow_nan=False))
        return 0
    print(
        f"{'strategy':<12}{'target':>7}{'headroom':>9}{'saturated min':>14}{'replica-h':>11}   (each strategy's front)"
    )
    for name, front in result["fronts"].items():  # type: ignore[attr-defined]
        for point in front:
            headroom = "-" if point["headroom"] is None else f"{point['headroom']:g}"
            print(
                f"{name:<12}{point['target']:>7g}{headroom:>9}{point['saturated_minutes']:>14}{point['replica_hours']:>11.1f}"
            )
    reference = result["at_reactive_current"]["reference"]  # type: ignore[index]
    print(
        f"\nAt reactive HPA's {reference['saturated_minutes']} saturated minutes (target {reference['target']:g}),"
        " the fewest replica-hours each strategy needs:"
    )
    for name, best in result["at_reactive_current"]["strategies"].items():  # type: ignore[index]
        if best is None:
            print(f"  {name:<12}no swept point saturates that little")
        else:
            headroom = "" if best["headroom"] is None else f", headroom {best['headroom']:g}"
            print(
                f"  {name:<12}{best['replica_hours']:>9.1f} ({best['vs_reactive_pct']:+.1f}%) at target"
                f" {best['target']:g}{headroom}: {best['saturated_minutes']} saturated minutes"
            )
    worse = result["predictive_not_on_or_below"]
    if not worse:
        print("The predictive front is on or below the reactive and naive fronts everywhere.")
    for item in worse:  # type: ignore[attr-defined]
        other, needs = item["than"], item["predictive_replica_hours"]
        print(
            f"Predictive is above the {other['strategy']} front at {other['saturated_minutes']} saturated minutes:"
            f" {other['replica_hours']:.1f} replica-hours there, predictive needs "
            + ("more than any swept point gives" if needs is None else f"{needs:.1f}")
        )
    return 0


def _finite(value: object) -> object:
    """``value`` with every NaN or infinite float as null: JSON has no NaN or Infinity."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _from_csv(args: argparse.Namespace, zero_fill: float) -> tuple[series.Series, list[str]]:
    zone = _zone(args.timezone)
    text = io.read_text(args.trace, "--trace")
    read = trace.read_trace(
        text, args.trace, zero_fill, zone, time_column=args.time_column, value_column=args.value_column
    )
    return read.data, list(read.notes)


def _policy_query(path: str) -> str | None:
    """The predictive query of a ScalingPolicy file, read before the policy itself is validated (its
    capacity is sized from the history this query returns)."""
    document = io.read_documents(path)[0]
    spec = document.get("spec") if isinstance(document, dict) else None
    predictive = spec.get("predictive") if isinstance(spec, dict) else None
    query = predictive.get("query") if isinstance(predictive, dict) else None
    return query if isinstance(query, str) and query.strip() else None


def _from_prometheus(args: argparse.Namespace) -> series.Series | demand_history.Trouble:
    """The history of ``--query`` (or the policy's query) over ``--since`` at ``--step``, through the
    operator's Prometheus adapter: chunked range queries, every failure a named trouble."""
    since, step = _seconds("--since", args.since or "30d"), _seconds("--step", args.step)
    problems = []
    if step < 1:
        problems.append(errors.Problem(path="--step", message="must be at least 1s"))
    elif since / step > MAX_PROMETHEUS_POINTS:
        problems.append(
            errors.Problem(
                path="--since", message=f"{since / step:.0f} points at --step; at most {MAX_PROMETHEUS_POINTS}"
            )
        )
    if not args.prometheus.startswith(("http://", "https://")):
        problems.append(errors.Problem(path="--prometheus", message=f"{args.prometheus!r} is not an http(s) URL"))
    query = args.query or (_policy_query(args.policy) if args.policy else None)
    if query is None:
        problems.append(
            errors.Problem(path="--query", message="give one, or a --policy whose spec.predictive has a query")
        )
    if problems:
        raise errors.SpecError(problems)
    assert query is not None
    args.query = query
    from walletplatform.clients import prometheus  # noqa: PLC0415 - requests: ~0.1 s a CSV replay does not need

    client = prometheus.Prometheus(args.prometheus, args.prometheus_timeout)
    return client.fetch_history(query, since, step, time.time())


def _policy(path: str, capacity: float) -> scaling.ScalingPolicySpec:
    """The ScalingPolicy of ``path``. Its predictive part is replayed at the backtest's capacity, target
    and start-up, so a policy written without ``capacityPerReplica`` is read with the flags' capacity."""
    document = io.read_documents(path)[0]
    spec = document.get("spec") if isinstance(document, dict) else None
    predictive = spec.get("predictive") if isinstance(spec, dict) else None
    if isinstance(predictive, dict):
        predictive.setdefault("capacityPerReplica", capacity)
    parsed = resources.parse_document(document)
    if not isinstance(parsed, resources.ScalingPolicy):
        raise errors.SpecError([errors.Problem(path="kind", message="--policy needs a ScalingPolicy")])
    return parsed.spec


def _seconds(flag: str, value: str) -> float:
    try:
        return common.parse_duration(value).total_seconds()
    except ValueError as exc:
        raise errors.SpecError([errors.Problem(path=flag, message=str(exc))]) from None


def _zone(name: str | None) -> ZoneInfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise errors.SpecError(
            [errors.Problem(path="--timezone", message=f"{name!r} is not an IANA time zone")]
        ) from None


def _strategies(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in plots.COLOURS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(plots.COLOURS)}; got {text!r}")
    return names


def _fractions(flag: str, zero: bool = False) -> Callable[[str], tuple[float, ...]]:
    """A comma-separated list of numbers in (0, 1] (or [0, 1] with ``zero``), at most 12 of them."""

    def parse(text: str) -> tuple[float, ...]:
        try:
            values = tuple(float(part) for part in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag}: {text!r} is not a comma-separated list of numbers") from None
        lowest = 0.0 if zero else math.ulp(0.0)
        if not values or len(values) > 12 or not all(lowest <= v <= 1 for v in values):
            bounds = "[0, 1]" if zero else "(0, 1]"
            raise argparse.ArgumentTypeError(f"{flag}: 1 to 12 numbers in {bounds}; got {text!r}")
        return values

    return parse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("backtest", help="replay a demand trace through HPA, schedules and predictive floors")
    parser.add_argument("--trace", help="CSV with a timestamp column and a value column (or --prometheus)")
    parser.add_argument("--time-column", help="the timestamp column of --trace: header name or 0-based index (0)")
    parser.add_argument("--value-column", help="the demand column of --trace: header name or 0-based index (1)")
    parser.add_argument("--prometheus", help="read the history from this Prometheus URL instead of a CSV")
    parser.add_argument("--query", help="PromQL for the demand (default: the --policy's predictive query)")
    parser.add_argument("--since", help="how much history to read from Prometheus (default 30d)")
    parser.add_argument("--step", default="1m", help="resolution of the Prometheus history (default 1m)")
    parser.add_argument("--prometheus-timeout", type=float, default=10.0, help="seconds per range query")
    parser.add_argument(
        "--policy",
        help="ScalingPolicy file: its schedules and predictive settings (the flags set capacityPerReplica)",
    )
    parser.add_argument("--capacity-per-replica", type=float)
    parser.add_argument("--peak-replicas", type=int, help="size capacity so the p99.9 needs N replicas")
    parser.add_argument("--target", type=float, default=0.7)
    parser.add_argument("--startup", default="120s")
    parser.add_argument("--service", default="transaction", help="catalog service whose HPA behaviour is used")
    parser.add_argument(
        "--forecaster", default="seasonal-profile", choices=["seasonal-profile", "seasonal-naive", "holt-winters"]
    )
    parser.add_argument("--zero-fill-max", default="0s", help="fill gaps up to this long with 0 (sparse logs)")
    parser.add_argument(
        "--timezone", help="IANA zone of timestamps without an offset (default UTC); tells the repeated DST hour apart"
    )
    parser.add_argument("--catalog", type=pathlib.Path, default=catalog.DEFAULT_DIR)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--jobs",
        type=int,
        help=f"replays run at once, each in its own process (default: the usable cores, here {workers.usable_cores()})",
    )
    parser.add_argument(
        "--plot", help="write a PNG: the replay (overview and worst windows), or with --frontier the frontier"
    )
    parser.add_argument(
        "--show",
        type=_strategies,
        default=["reactive", "predictive"],
        help="strategies the replay plot draws, comma-separated (default reactive,predictive)",
    )
    parser.add_argument(
        "--frontier",
        action="store_true",
        help="sweep the HPA target (and the floors' headroom) at the fixed capacity: saturation against cost",
    )
    parser.add_argument(
        "--targets", type=_fractions("--targets"), default=frontier.TARGETS, help="HPA targets to sweep"
    )
    parser.add_argument(
        "--headrooms", type=_fractions("--headrooms", zero=True), default=frontier.HEADROOMS, help="headrooms to sweep"
    )
    parser.set_defaults(func=cmd_backtest)
