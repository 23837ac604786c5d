"""Reading demand traces of the shapes real ones come in: gaps stay gaps, every time format and order
is read to the right instant, daylight-saving's repeated hour is told apart, bad rows are named."""

from __future__ import annotations

import json
import math
import pathlib
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from walletplatform.backtest import trace
from walletplatform.cli import backtest as cli_backtest
from walletplatform.cli import main
from walletplatform.models import errors

from tests.conftest import DEV_EXAMPLE
from tests.unit.test_cli import run

NEW_YORK = ZoneInfo("America/New_York")


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_header_iso_times_and_a_missing_row_is_a_gap() -> None:
    read = trace.read_trace("timestamp,value\n2024-01-01 00:00:00,5\n2024-01-01 00:05:00,7\n2024-01-01 00:15:00,9\n")
    assert (read.data.start, read.data.step) == (at("2024-01-01 00:00:00"), 300.0)
    np.testing.assert_array_equal(read.data.values, [5, 7, np.nan, 9])
    assert read.notes == ("1 of 4 points are gaps (no row or no value): skipped, not read as zero",)


def test_zero_fill_reads_only_short_gaps_as_zero_traffic_and_says_so() -> None:
    rows = [0, 60, 180, 240, 600, 660]  # a 1-minute gap, then a 5-minute gap
    read = trace.read_trace("t,v\n" + "\n".join(f"{t},{i + 1}" for i, t in enumerate(rows)), zero_fill_max=120)
    np.testing.assert_array_equal(read.data.values, [1, 2, 0, 3, 4, *[np.nan] * 5, 5, 6])
    assert read.notes == (
        "1 points in gaps of up to 120s read as zero",
        "5 of 12 points are gaps (no row or no value): skipped, not read as zero",
    )


def test_no_header_and_epoch_milliseconds_read_as_the_same_instants() -> None:
    seconds = trace.read_trace("1700000000,1\n1700000060,2\n1700000120,3\n")
    millis = trace.read_trace("ts,v\n1700000000000,1\n1700000060000,2\n1700000120000,3\n")
    assert (seconds.data.start, seconds.data.step) == (millis.data.start, millis.data.step) == (1700000000.0, 60.0)
    np.testing.assert_array_equal(seconds.data.values, [1, 2, 3])


def test_offsets_are_honoured_and_empty_or_na_values_are_gaps() -> None:
    read = trace.read_trace("t,v\n2024-01-01T01:00:00+01:00,1\n2024-01-01T00:01:00Z,\n2024-01-01T00:02:00Z,NA\n")
    assert read.data.start == at("2024-01-01 00:00:00")
    assert read.data.values[0] == 1 and np.isnan(read.data.values[1:]).all()


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("t,v\n2024-01-01 00:00:00,1\n2024-01-01 00:01:00,lots\n", "trace.csv:3"),
        ("t,v\nyesterday,1\n2024-01-01 00:01:00,2\n", "trace.csv:2"),
        ("t,v\n2024-01-01 00:00:00,1\n2024-01-01 00:01:00,inf\n", "trace.csv:3"),
        ("t,v\n2024-01-01 00:00:00,1\n", "trace.csv"),
        ("t,v\n0,1\n60," + "9" * 200_000 + "\n", "trace.csv:3"),  # a field beyond the csv module's limit
        ("\r\x00", "trace.csv"),  # a lone carriage return (hypothesis found it ending in csv.Error)
    ],
)
def test_a_bad_row_is_named_by_its_line(text: str, path: str) -> None:
    with pytest.raises(errors.SpecError) as caught:
        trace.read_trace(text, "trace.csv")
    assert caught.value.problems[0].path == path


def test_rows_out_of_order_are_sorted_and_repeated_timestamps_averaged() -> None:
    read = trace.read_trace("t,v\n120,3\n0,1\n60,2\n60,4\n60,\n")
    np.testing.assert_array_equal(read.data.values, [1, 3, 3])
    assert read.notes == (
        "rows were out of time order and were sorted",
        "2 rows repeat a timestamp; their values are averaged",
    )


FALL_BACK = "t,v\n2014-11-02 00:30,1\n2014-11-02 01:00,2\n2014-11-02 01:30,3\n2014-11-02 01:00,4\n2014-11-02 01:30,5\n"


def test_the_repeated_dst_hour_in_local_time_is_two_hours_with_the_zone() -> None:
    read = trace.read_trace(FALL_BACK + "2014-11-02 02:00,6\n", timezone=NEW_YORK)
    expected_start = datetime(2014, 11, 2, 0, 30, tzinfo=NEW_YORK).timestamp()
    assert (read.data.start, read.data.step) == (expected_start, 1800.0)
    np.testing.assert_array_equal(read.data.values, [1, 2, 3, 4, 5, 6])  # six half-hours, no gap
    assert read.notes == ("1 repeated local hour(s) read as the second pass",)


def test_without_the_zone_the_repeated_hour_is_averaged_not_lost() -> None:
    read = trace.read_trace(FALL_BACK)
    np.testing.assert_array_equal(read.data.values, [1, 3, 4])
    assert read.notes[-1] == "2 rows repeat a timestamp; their values are averaged"


def test_the_skipped_dst_hour_in_local_time_is_no_gap() -> None:
    read = trace.read_trace("t,v\n2014-03-09 01:00,1\n2014-03-09 01:30,2\n2014-03-09 03:00,3\n", timezone=NEW_YORK)
    np.testing.assert_array_equal(read.data.values, [1, 2, 3])
    assert read.data.step == 1800.0


def test_per_minute_holds_coarse_buckets_and_averages_fine_samples() -> None:
    coarse = trace.per_minute(trace.read_trace("t,v\n0,10\n300,20\n").data)
    np.testing.assert_array_equal(coarse.values, [10] * 5 + [20] * 5)
    rows = "\n".join(f"{600 + 10 * i},{'' if 6 <= i < 12 else i}" for i in range(18))
    fine = trace.per_minute(trace.read_trace("t,v\n" + rows).data)
    assert (fine.start, fine.step) == (600.0, 60.0)
    assert fine.values[0] == pytest.approx(2.5) and math.isnan(fine.values[1]) and fine.values[2] == pytest.approx(14.5)


def test_backtest_cli_names_a_bad_zone_and_a_short_trace(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "short.csv"
    path.write_text("t,v\n" + "\n".join(f"{60 * m},{m % 7}" for m in range(3 * 1440)))
    code, _, err = run(capsys, "backtest", "--trace", str(path), "--peak-replicas", "5", "--timezone", "Mars/Olympus")
    assert code == 2 and err.startswith("--timezone: 'Mars/Olympus' is not an IANA time zone")
    code, _, err = run(capsys, "backtest", "--trace", str(path), "--peak-replicas", "5")
    assert code == 2 and err.startswith("--trace: must span more than one week")


def test_a_20_second_trace_backtests_like_its_1_minute_averages(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    minutes = np.arange(8 * 1440 + 180)
    demand = 100 + 80 * np.sin(2 * np.pi * minutes / 1440) + 30 * (minutes % 97 == 0)
    coarse, fine = tmp_path / "minute.csv", tmp_path / "20s.csv"
    coarse.write_text(
        "t,v\n" + "\n".join(f"{1700000000 + 60 * m},{v:.2f}" for m, v in zip(minutes, demand, strict=True))
    )
    fine.write_text(
        "t,v\n"
        + "\n".join(
            f"{1700000000 + 60 * m + 20 * k},{v + (k - 1) * 5:.2f}"
            for m, v in zip(minutes, demand, strict=True)
            for k in range(3)
        )
    )
    results = []
    for path in (coarse, fine):
        code, out, _ = run(capsys, "backtest", "--trace", str(path), "--peak-replicas", "20", "--json")
        assert code == 0
        results.append(json.loads(out))
    assert results[1]["meta"]["trace_notes"] == ["20s samples averaged to 1-minute rates"]
    assert results[1]["strategies"] == results[0]["strategies"]


def test_a_30_minute_trace_backtests_like_the_same_demand_written_per_minute(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    """The engine forecasts from 1-minute history whatever the trace's step, as from Prometheus."""
    buckets = np.arange(9 * 48)
    demand = 100 + 80 * np.sin(2 * np.pi * buckets / 48) + 40 * (buckets % 48 == 20)
    coarse, fine = tmp_path / "30min.csv", tmp_path / "minute.csv"
    coarse.write_text("\n".join(f"{1700000000 + 1800 * b},{v:.2f}" for b, v in zip(buckets, demand, strict=True)))
    fine.write_text(
        "\n".join(
            f"{1700000000 + 1800 * b + 60 * m},{v:.2f}" for b, v in zip(buckets, demand, strict=True) for m in range(30)
        )
    )
    results = []
    for path in (coarse, fine):
        code, out, _ = run(capsys, "backtest", "--trace", str(path), "--peak-replicas", "20", "--json")
        assert code == 0
        results.append(json.loads(out))
    assert (results[0]["meta"]["trace_step_s"], results[1]["meta"]["trace_step_s"]) == (1800, 60)
    assert results[0]["meta"]["capacity_per_replica"] == results[1]["meta"]["capacity_per_replica"]
    assert results[0]["strategies"] == results[1]["strategies"]
    assert results[0]["strategies"]["predictive"]["actions"] > 0


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (
            ["--peak-replicas", "0", "--target", "2"],
            ["--peak-replicas: must be in [1, 10000]", "--target: must be in (0, 1]"],
        ),
        (["--capacity-per-replica", "-1"], ["--capacity-per-replica: must be > 0"]),
        (["--peak-replicas", "5", "--jobs", "0"], ["--jobs: must be in [1, 64]"]),
        (
            ["--peak-replicas", "5", "--capacity-per-replica", "3"],
            ["--capacity-per-replica/--peak-replicas: give exactly one"],
        ),
        (
            ["--peak-replicas", "5", "--startup", "soon"],
            ["--startup: 'soon' is not a duration such as 30s, 15m, 2h or 14d"],
        ),
        (
            ["--peak-replicas", "5", "--service", "ledger"],
            [
                "--service: 'ledger' is not one of account, api-gateway, "
                "compliance, notification, payment, transaction, user"
            ],
        ),
    ],
)
def test_backtest_cli_names_each_bad_flag(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path, flags: list[str], expected: list[str]
) -> None:
    path = tmp_path / "trace.csv"
    path.write_text("t,v\n" + "\n".join(f"{60 * m},{1 + m % 7}" for m in range(8 * 1440)))
    code, out, err = run(capsys, "backtest", "--trace", str(path), *flags)
    assert (code, out, err.splitlines()) == (2, "", expected)


def test_backtest_cli_names_a_missing_or_all_zero_trace(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    code, _, err = run(capsys, "backtest", "--trace", str(tmp_path / "nope.csv"), "--peak-replicas", "5")
    assert code == 2 and err.startswith("--trace: cannot read") and "No such file" in err
    path = tmp_path / "zero.csv"
    path.write_text("t,v\n" + "\n".join(f"{60 * m},0" for m in range(8 * 1440)))
    code, _, err = run(capsys, "backtest", "--trace", str(path), "--peak-replicas", "5")
    assert (code, err.strip()) == (2, "--trace: its 99.9th percentile is 0: nothing to size replicas by")
    path.write_text("t,v\n0,1\n60,-3\n")
    code, _, err = run(capsys, "backtest", "--trace", str(path), "--peak-replicas", "5")
    assert (code, err.strip()) == (
        2,
        f"{path}:3: cannot read ['60', '-3'] as timestamp,value: demand must be finite and not negative, not -3",
    )


POLICY = """\
apiVersion: wallet.platform.io/v1alpha1
kind: ScalingPolicy
metadata: {name: transaction, namespace: wallet}
spec:
  platformRef: wallet
  services: [transaction]
  schedules:
    - {name: daytime, start: "06:00", end: "18:00", floor: 12}
  predictive: {query: demand, forecaster: seasonal-naive, headroom: %s}
"""


def test_backtest_replays_a_policy_file_at_the_flags_capacity(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    """A policy is written for Prometheus, not for a trace: it need not state capacityPerReplica."""
    minutes = np.arange(9 * 1440)
    path, policy = tmp_path / "trace.csv", tmp_path / "policy.yaml"
    path.write_text("\n".join(f"{60 * m},{100 + 80 * np.sin(2 * np.pi * m / 1440):.2f}" for m in minutes))
    policy.write_text(POLICY % "0")
    code, out, err = run(
        capsys, "backtest", "--trace", str(path), "--peak-replicas", "20", "--policy", str(policy), "--json"
    )
    assert (code, err) == (0, "")
    result = json.loads(out)
    assert result["meta"]["forecaster"] == "seasonal-naive"
    strategies = result["strategies"]
    assert strategies["schedule"]["replica_hours"] > strategies["reactive"]["replica_hours"]  # the daytime floor of 12

    policy.write_text(POLICY % "5")
    code, out, err = run(capsys, "backtest", "--trace", str(path), "--peak-replicas", "20", "--policy", str(policy))
    assert (code, out) == (2, "") and err.startswith("spec.predictive.headroom: ")
    code, out, err = run(
        capsys, "backtest", "--trace", str(path), "--peak-replicas", "20", "--policy", str(DEV_EXAMPLE)
    )
    assert (code, out, err) == (2, "", "kind: --policy needs a ScalingPolicy\n")


@pytest.mark.parametrize(
    ("rows", "widest"),
    [
        (["0,5", "1,5", "3000000000,5"], "1970-01-01T00:00:01+00:00 and 2065-01-24T05:20:00+00:00"),
        ([f"{1_700_000_000 + 60 * i},5" for i in range(14_400)] + ["2219000000,5"], "and 2040-04-25T20:53:20+00:00"),
        # Two rows 16 years apart: one "step", two points, but 8 million minutes to replay (hypothesis found it).
        (
            ["2040-01-01T00:00:00Z,", "2024-03-31T02:30:00,45003"],
            "2024-03-31T02:30:00+00:00 and 2040-01-01T00:00:00+00:00",
        ),
    ],
)
def test_a_stray_row_is_refused_naming_the_gap_not_gridded(rows: list[str], widest: str) -> None:
    with pytest.raises(errors.SpecError) as caught:
        trace.read_trace("\n".join(rows), "t.csv")
    (problem,) = caught.value.problems
    assert problem.path == "t.csv" and "is a row out of place?" in problem.message and widest in problem.message


def test_json_output_is_strict_json(capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path) -> None:
    assert cli_backtest._finite({"a": math.nan, "b": [math.inf, 1.5], "c": (-math.inf,)}) == {
        "a": None,
        "b": [None, 1.5],
        "c": [None],
    }
    path = tmp_path / "t.csv"
    path.write_text("\n".join(f"{1_700_000_000 + 60 * i},{'nan' if i % 2 else 1e-300}" for i in range(9 * 1440)))
    code = main.main(["backtest", "--trace", str(path), "--peak-replicas", "5", "--json"])
    out, _ = capsys.readouterr()
    assert code == 0
    json.loads(out, parse_constant=pytest.fail)


@pytest.mark.parametrize(
    ("value", "flags", "message"),
    [
        ("1.7e308", ("--peak-replicas", "5"), "demand must be at most 1e+15, not 1.7e308"),
        ("5", ("--capacity-per-replica", "0.000001"), "--capacity-per-replica: 1e-06 per replica needs"),
        ("5", ("--peak-replicas", "99999999999"), "--peak-replicas: must be in [1, 10000]"),
    ],
)
def test_demand_and_replica_counts_are_bounded(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path, value: str, flags: tuple[str, ...], message: str
) -> None:
    path = tmp_path / "t.csv"
    path.write_text("\n".join(f"{1_700_000_000 + 60 * i},{value}" for i in range(9 * 1440)))
    code, _, err = run(capsys, "backtest", "--trace", str(path), *flags, "--json")
    assert code == 2 and message in err and "Traceback" not in err
