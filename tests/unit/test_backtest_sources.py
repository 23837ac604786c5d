"""``walletctl backtest`` on a team's own exports: a CSV with many columns read by column name or index,
an unknown column named with the file's columns, no warnings on stderr, and a history that leaves
nothing to score refused (the Prometheus source is tested against the real server in
tests/integration/test_prometheus.py)."""

from __future__ import annotations

import math
import pathlib
import subprocess
import sys

import pytest

HEADER = "holiday,temp,rain_1h,snow_1h,clouds_all,weather_main,weather_description,date_time,traffic_volume"


def traffic_csv(path: pathlib.Path, days: int = 10, gap_after_week: bool = False) -> pathlib.Path:
    """Hourly traffic in the shape of the public Metro Interstate Traffic Volume export: 'None' in the
    holiday column, weather columns, the time in the 8th column and the volume in the 9th."""
    rows = [HEADER]
    for hour in range(days * 24):
        day, clock = divmod(hour, 24)
        # A missing hour in the first week (an hour with no sample: once numpy's "Mean of empty slice").
        missing = (gap_after_week and day >= 7) or (day, clock) == (1, 3)
        volume = "" if missing else f"{3000 + 2500 * math.sin(math.pi * clock / 24):.0f}"
        stamp = f"2012-10-{2 + day:02d} {clock:02d}:00:00"
        rows.append(f"None,288.28,0.0,0.0,40,Clouds,scattered clouds,{stamp},{volume}")
    path.write_text("\n".join(rows) + "\n")
    return path


def backtest(*args: str) -> subprocess.CompletedProcess[str]:
    # -W error: any warning (numpy's "Mean of empty slice" included) would fail the command.
    command = [sys.executable, "-W", "error", "-m", "walletplatform.cli.main", "backtest", "--peak-replicas", "10"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.parametrize(
    "columns",
    [("--time-column", "date_time", "--value-column", "traffic_volume"), ("--time-column", "7", "--value-column", "8")],
    ids=["by-name", "by-index"],
)
def test_a_many_column_export_is_read_by_column(tmp_path: pathlib.Path, columns: tuple[str, ...]) -> None:
    result = backtest("--trace", str(traffic_csv(tmp_path / "metro.csv")), *columns, "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert '"minutes_scored": ' in result.stdout and '"minutes_scored": 0' not in result.stdout


def test_the_default_columns_still_name_the_line_that_cannot_be_read(tmp_path: pathlib.Path) -> None:
    result = backtest("--trace", str(traffic_csv(tmp_path / "metro.csv")))
    assert result.returncode == 2
    assert "metro.csv:2: cannot read ['None', '288.28'] as timestamp,value" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_column_lists_the_columns_of_the_file(tmp_path: pathlib.Path) -> None:
    result = backtest("--trace", str(traffic_csv(tmp_path / "metro.csv")), "--value-column", "volume")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"--value-column: no column 'volume' in {tmp_path / 'metro.csv'}; its columns: "
        + ", ".join(repr(c) for c in HEADER.split(","))
    )
    result = backtest("--trace", str(traffic_csv(tmp_path / "metro.csv")), "--time-column", "12")
    assert result.returncode == 2 and "--time-column: column 12 does not exist" in result.stderr


def test_a_history_with_nothing_to_score_is_an_error_not_nan(tmp_path: pathlib.Path) -> None:
    path = traffic_csv(tmp_path / "metro.csv", gap_after_week=True)
    result = backtest("--trace", str(path), "--time-column", "date_time", "--value-column", "traffic_volume")
    assert result.returncode == 2
    assert "--trace: every minute after the first week (history only) is a gap: nothing to score" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "--trace/--prometheus: give exactly one source of history"),
        (("--trace", "x.csv", "--prometheus", "http://127.0.0.1:1"), "--trace/--prometheus: give exactly one"),
        (("--trace", "x.csv", "--query", "up"), "--query/--since: only with --prometheus"),
        (
            ("--prometheus", "http://127.0.0.1:1", "--time-column", "0"),
            "--time-column/--value-column: only with --trace",
        ),
        (("--prometheus", "http://127.0.0.1:1"), "--query: give one, or a --policy whose spec.predictive has a query"),
        (("--prometheus", "file:///etc/passwd", "--query", "up"), "--prometheus: 'file:///etc/passwd' is not an http"),
        (("--prometheus", "http://127.0.0.1:1", "--query", "up", "--step", "1s", "--since", "3650d"), "--since: "),
    ],
    ids=[
        "no-source",
        "two-sources",
        "query-without-prometheus",
        "column-without-trace",
        "no-query",
        "not-http",
        "too-many-points",
    ],
)
def test_bad_source_flags_are_named(args: tuple[str, ...], message: str) -> None:
    result = backtest(*args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
