"""Backtest benchmark: ``python tests/benchmarks/bench_backtest.py [--only NAME ...]``.

Runs ``walletctl backtest --json`` with the README's flags (``--peak-replicas 20 --target 0.7
--startup 120s``) on the three traces in ../shared/traces and on a year of synthetic 1-minute demand
(daily and weekly shape, noise, bursts, gaps; seeded), as a user runs it: a fresh process each time,
so the figures include reading the CSV and starting Python. Each input runs twice: with the default
``--jobs`` (every usable core) and with ``--jobs 1`` (one process). Prints per run the wall time, the
CPU time of the process and its workers (user + system; less sensitive to other work on the machine
than wall time), the minutes replayed per second of CPU and the predictive strategy's figures (so a
change in speed that changes results shows), then one JSON object as the last line."""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
TRACES = ROOT.parent / "shared" / "traces"
FLAGS = ["--peak-replicas", "20", "--target", "0.7", "--startup", "120s", "--json"]
RUNS = {
    "elb": ["--trace", str(TRACES / "nab-elb-requests-5min" / "elb_request_count_8c0756.csv")],
    "nasa": ["--trace", str(TRACES / "nasa-http-1min" / "requestdata-20240626.csv"), "--zero-fill-max", "1h"],
    "taxi": ["--trace", str(TRACES / "nab-nyc-taxi-30min" / "nyc_taxi.csv")],
    "year-1min": [],  # --trace added once the synthetic file is written
}


def synthetic_year(path: pathlib.Path, seed: int = 11) -> None:
    """365 days of 1-minute demand: a daily and weekly shape, log-normal noise, a few bursts, gaps."""
    rng = np.random.default_rng(seed)
    minutes = 365 * 1440
    t = 1_700_000_000 + 60 * np.arange(minutes)
    hour = (t % 86400) / 3600
    weekday = (t // 86400 + 3) % 7
    values = (40 + 160 * np.exp(-(((hour - 13) / 3.5) ** 2))) * np.where(weekday >= 5, 0.6, 1.0)
    values = values * rng.lognormal(0, 0.15, minutes)
    bursts = rng.choice(minutes, 200, replace=False)
    values[bursts] *= rng.uniform(1.5, 3.0, bursts.size)
    values[rng.choice(minutes, 2000, replace=False)] = np.nan
    with path.open("w") as out:
        out.write("timestamp,value\n")
        for stamp, value in zip(t.tolist(), values.tolist(), strict=True):
            out.write(f"{stamp},{'' if math.isnan(value) else f'{value:.3f}'}\n")


def measure(args: list[str]) -> dict[str, object]:
    command = [str(ROOT / ".venv" / "bin" / "walletctl"), "backtest", *args, *FLAGS]
    # wait4's usage of the child includes the workers it forked and waited for
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors)
        assert process.stdout is not None
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)  # this child's own CPU time and peak RSS
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            raise SystemExit(f"{' '.join(command)} failed:\n{errors.read().decode()}")
    result = json.loads(output)
    cpu = usage.ru_utime + usage.ru_stime
    minutes = result["meta"]["minutes_scored"]
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "minutes_scored": minutes,
        "minutes_per_cpu_s": round(minutes / cpu),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "predictive": result["strategies"]["predictive"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(RUNS), help="run only these")
    options = parser.parse_args()
    figures = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, flags in RUNS.items():
            if options.only and name not in options.only:
                continue
            if name == "year-1min":
                path = pathlib.Path(scratch) / "year.csv"
                synthetic_year(path)
                flags = ["--trace", str(path)]  # noqa: PLW2901 - the file exists only now
            for jobs, extra in (("all", []), ("1", ["--jobs", "1"])):
                figures[f"{name} jobs={jobs}"] = f = measure(flags + extra)
                print(
                    f"{name:<10} jobs={jobs:<4} wall {f['wall_s']:>7.2f} s  cpu {f['cpu_s']:>7.2f} s  "
                    f"{f['minutes_scored']:>7} minutes  {f['minutes_per_cpu_s']:>6} min/cpu-s  "
                    f"predictive {f['predictive']}",
                    flush=True,
                )
    print(json.dumps({"cpus": len(os.sched_getaffinity(0)), "runs": figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
