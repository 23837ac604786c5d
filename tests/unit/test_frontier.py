"""The risk/cost frontier: fronts, the comparison at the current target, and that every swept point is
the same replay ``walletctl backtest`` scores (one engine, one simulator)."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
from walletplatform import catalog
from walletplatform.backtest import frontier, run
from walletplatform.cli import plots

from tests.unit.test_backtest_replay import seeded_trace
from tests.unit.test_cli import run as run_cli


def point(
    strategy: str, saturated: int, hours: float, target: float = 0.7, headroom: float | None = None
) -> frontier.Point:
    return frontier.Point(strategy, target, headroom, saturated, hours)


def test_a_front_keeps_only_points_no_cheaper_point_beats() -> None:
    points = [point("naive", 50, 100), point("naive", 60, 110), point("naive", 40, 120), point("naive", 40, 130)]
    assert frontier.pareto(points) == [point("naive", 50, 100), point("naive", 40, 120)]
    assert frontier.cheapest_within(points, 45) == point("naive", 40, 120)
    assert frontier.cheapest_within(points, 39) is None
    assert point("x", 40, 100).beats(point("y", 40, 101)) and not point("x", 40, 100).beats(point("y", 40, 100))


def test_the_summary_names_where_predictive_is_above_another_front() -> None:
    points = [
        point("reactive", 100, 1000, target=0.9),
        point("reactive", 90, 1100),
        point("predictive", 100, 1010, target=0.9, headroom=0.0),  # above reactive at 100 minutes
        point("predictive", 80, 1050, headroom=0.1),
        point("naive", 85, 1060, headroom=0.0),  # predictive saturates less for less
    ]
    summary = frontier.summarise(points, 0.7, 1000)
    at = summary["at_reactive_current"]
    assert at["reference"]["saturated_minutes"] == 90  # type: ignore[index]
    assert at["strategies"]["predictive"]["replica_hours"] == 1050  # type: ignore[index]
    assert at["strategies"]["predictive"]["vs_reactive_pct"] == pytest.approx(-4.5)  # type: ignore[index]
    worse = summary["predictive_not_on_or_below"]
    assert [w["than"]["saturated_minutes"] for w in worse] == [100]  # type: ignore[attr-defined, index]
    assert summary["dominated_predictive_points"] == [points[2].as_dict()]


def test_swept_points_are_the_replays_backtest_scores() -> None:
    data = seeded_trace()
    service = catalog.load_catalog()["transaction"]
    config = run.Config(service=service, capacity=run.capacity_for_peak(data, 20, 0.7))
    result = frontier.sweep(data, config, targets=(0.6, 0.8), headrooms=(0.0, 0.1))
    single = run.run(data, config)["strategies"]
    points = {(p["strategy"], p["target"], p["headroom"]): p for p in result["points"]}  # type: ignore[attr-defined]
    assert len(points) == 3 + 3 * 2 * 2  # 0.7, the current target, is swept too
    for strategy, headroom in (("reactive", None), ("predictive", 0.1), ("naive", 0.0)):
        swept = points[(strategy, 0.7, headroom)]
        assert (swept["saturated_minutes"], swept["replica_hours"]) == (
            single[strategy]["saturated_minutes"],  # type: ignore[index]
            single[strategy]["replica_hours"],  # type: ignore[index]
        )


def test_worst_windows_do_not_overlap_and_come_most_first() -> None:
    saturated = np.zeros(3000, dtype=bool)
    saturated[[100, 101, 102, 2000, 2001, 2500]] = True
    starts = plots.worst_windows(saturated, count=3, width=360)
    assert len(starts) == 3 and np.count_nonzero(saturated[starts[0] : starts[0] + 360]) == 3
    assert all(abs(a - b) >= 360 for a in starts for b in starts if a != b)
    assert plots.worst_windows(np.zeros(10, dtype=bool)) == []


def test_frontier_cli_prints_json_and_a_png(capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path) -> None:
    data = seeded_trace()
    rows = ["timestamp,value"] + [
        f"{data.start + 60 * i:.0f},{'' if np.isnan(v) else f'{v:.3f}'}" for i, v in enumerate(data.values)
    ]
    path = tmp_path / "trace.csv"
    path.write_text("\n".join(rows))
    png = tmp_path / "frontier.png"
    flags = (
        "--trace",
        str(path),
        "--peak-replicas",
        "20",
        "--frontier",
        "--targets",
        "0.7,0.9",
        "--headrooms",
        "0,0.2",
    )
    code, out, _ = run_cli(capsys, "backtest", *flags, "--json", "--plot", str(png))
    assert code == 0 and png.read_bytes().startswith(b"\x89PNG")
    result = json.loads(out)
    assert {p["target"] for p in result["points"]} == {0.7, 0.9}
    assert set(result["fronts"]) == {"reactive", "predictive", "naive"}
    replay_png = tmp_path / "replay.png"
    code, _, _ = run_cli(capsys, "backtest", *flags[:4], "--plot", str(replay_png), "--show", "reactive,naive,schedule")
    assert code == 0 and replay_png.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("flag", "value"), [("--targets", "0.7,1.5"), ("--targets", "0"), ("--headrooms", "x"), ("--show", "magic")]
)
def test_bad_sweep_flags_are_status_2_naming_the_flag(
    capsys: pytest.CaptureFixture[str], flag: str, value: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        run_cli(capsys, "backtest", "--trace", "x.csv", "--peak-replicas", "5", "--frontier", flag, value)
    assert exited.value.code == 2
    assert flag in capsys.readouterr().err
