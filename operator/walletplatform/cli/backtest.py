"""walletctl backtest: replay a demand trace through every strategy and print the scores."""

from __future__ import annotations

import argparse
import json
import pathlib
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from walletplatform import catalog
from walletplatform.backtest import run, trace
from walletplatform.cli import io
from walletplatform.models import common, errors, resources, scaling


def cmd_backtest(args: argparse.Namespace) -> int:
    problems = []
    if (args.capacity_per_replica is None) == (args.peak_replicas is None):
        problems.append(errors.Problem(path="--capacity-per-replica/--peak-replicas", message="give exactly one"))
    if args.capacity_per_replica is not None and not args.capacity_per_replica > 0:
        problems.append(errors.Problem(path="--capacity-per-replica", message="must be > 0"))
    if args.peak_replicas is not None and args.peak_replicas < 1:
        problems.append(errors.Problem(path="--peak-replicas", message="must be >= 1"))
    if not 0 < args.target <= 1:
        problems.append(errors.Problem(path="--target", message="must be in (0, 1]"))
    if problems:
        raise errors.SpecError(problems)
    startup, zero_fill = _seconds("--startup", args.startup), _seconds("--zero-fill-max", args.zero_fill_max)
    zone = _zone(args.timezone)
    try:
        text = pathlib.Path(args.trace).read_text()
    except OSError as exc:
        raise errors.SpecError(
            [errors.Problem(path="--trace", message=f"cannot read {args.trace}: {exc.strerror}")]
        ) from None
    read = trace.read_trace(text, args.trace, zero_fill, zone)
    native, notes = read.data, list(read.notes)
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
    result = run.run(
        demand,
        run.Config(
            service=service,
            capacity=capacity,
            target=args.target,
            startup=startup,
            policy=policy,
            forecaster=args.forecaster,
        ),
    )
    curves = result.pop("_series")
    result["meta"]["trace_notes"] = notes  # type: ignore[index]
    result["meta"]["trace_step_s"] = native.step  # type: ignore[index]
    if args.plot:
        _plot(args.plot, curves)  # type: ignore[arg-type]
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{'strategy':<12}{'saturated %':>12}{'replica-h':>12}{'vs oracle':>11}{'actions':>9}")
    for name, score in result["strategies"].items():  # type: ignore[attr-defined]
        print(
            f"{name:<12}{score['saturated_pct']:>12.3f}{score['replica_hours']:>12.1f}"
            f"{score['replica_hours_vs_oracle']:>11.3f}{score['actions']:>9}"
        )
    print(json.dumps(result["meta"]))
    return 0


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


def _plot(path: str, curves: dict[str, list[float]]) -> None:
    import matplotlib  # noqa: PLC0415 - optional, only for --plot

    matplotlib.use("Agg")
    from matplotlib import pyplot  # noqa: PLC0415

    figure, axes = pyplot.subplots(figsize=(14, 5))
    axes.plot(curves["demand"], label="demand", color="black", linewidth=0.9)
    for name, values in curves.items():
        if name != "demand":
            axes.plot(values, label=f"{name} ready capacity", linewidth=0.7)
    axes.set_xlabel("scored minute")
    axes.legend()
    figure.savefig(path, dpi=110)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("backtest", help="replay a demand trace through HPA, schedules and predictive floors")
    parser.add_argument("--trace", required=True, help="CSV with a timestamp column and a value column")
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
    parser.add_argument("--plot", help="write a PNG of ready capacity per strategy")
    parser.set_defaults(func=cmd_backtest)
