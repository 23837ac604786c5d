"""Real Prometheus (Debian's package) on loopback with a temporary TSDB, backfilled from a demand
series with ``promtool tsdb create-blocks-from openmetrics`` so weeks of history load in seconds."""

from __future__ import annotations

import base64
import math
import pathlib
import shutil
import signal
import subprocess
import urllib.request

import yaml

from walletplatform.devenv import processes
from walletplatform.forecast import series
from walletplatform.models import common

METRIC = "http_requests_total"


def binary(name: str) -> pathlib.Path:
    found = shutil.which(name) or (f"/usr/bin/{name}" if pathlib.Path(f"/usr/bin/{name}").exists() else None)
    if found is None:
        raise FileNotFoundError(f"{name} not found: install Debian's prometheus package (apt-get install prometheus)")
    return pathlib.Path(found)


def openmetrics(data: series.Series, labels: dict[str, str], rate_window: float = 300.0) -> str:
    """A counter whose rate is ``data`` (per second), in OpenMetrics text; NaN gaps write no samples."""
    return openmetrics_many([(data, labels)], rate_window)


def openmetrics_many(counters: list[tuple[series.Series, dict[str, str]]], rate_window: float = 300.0) -> str:
    """Several such counters of one metric family in one text (one ``promtool`` run backfills them)."""
    lines = [f"# TYPE {METRIC.removesuffix('_total')} counter"]
    for data, labels in counters:
        label_text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        total = 0.0
        for i, value in enumerate(data.values):
            if math.isnan(value):
                continue
            total += value * data.step
            lines.append(f"{METRIC}{{{label_text}}} {total:.3f} {data.start + i * data.step:.0f}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


class Prometheus:
    def __init__(
        self, workdir: pathlib.Path, address: str = "127.0.0.1", basic_auth: tuple[str, str] | None = None
    ) -> None:
        self.address = address  # the node address when pods (the operator in-cluster) must reach it
        self.basic_auth = basic_auth  # (user, password): Prometheus's web config then asks every request
        self.workdir = workdir
        self.data = workdir / "tsdb"
        self.data.mkdir(parents=True, exist_ok=True)
        (workdir / "logs").mkdir(exist_ok=True)
        self.port = processes.free_port()
        self.process: processes.Process | None = None

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def backfill(self, text: str) -> None:
        """Write blocks from OpenMetrics text into the TSDB (before ``start``)."""
        source = self.workdir / "backfill.om"
        source.write_text(text)
        subprocess.run(
            [str(binary("promtool")), "tsdb", "create-blocks-from", "openmetrics", str(source), str(self.data)],
            check=True,
            capture_output=True,
            text=True,
        )

    def _write_config(self, scrape_configs: list[common.JsonValue]) -> pathlib.Path:
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump({"global": {"scrape_interval": "15s"}, "scrape_configs": scrape_configs}))
        return config

    def configure(self, scrape_configs: list[common.JsonValue]) -> None:
        """Scrape these jobs from now on (a new config and SIGHUP, Prometheus's own reload)."""
        self._write_config(scrape_configs)
        if self.process is not None and self.process.popen is not None:
            self.process.popen.send_signal(signal.SIGHUP)

    def start(self) -> Prometheus:
        config = self._write_config([])
        argv = [
            str(binary("prometheus")),
            f"--config.file={config}",
            f"--storage.tsdb.path={self.data}",
            f"--web.listen-address={self.address}:{self.port}",
            "--storage.tsdb.retention.time=10y",
            "--query.lookback-delta=15m",
        ]
        ready = urllib.request.Request(f"{self.url}/-/ready")
        if self.basic_auth is not None:
            import bcrypt  # noqa: PLC0415 - a test dependency, only for this

            user, password = self.basic_auth
            hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
            web = self.workdir / "web.yml"
            web.write_text(f"basic_auth_users:\n  {user}: {hashed}\n")
            argv.append(f"--web.config.file={web}")
            ready.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
        self.process = processes.Process("prometheus", argv, self.workdir / "logs").start()
        processes.wait_until(lambda: urllib.request.urlopen(ready, timeout=2).status == 200, 60, "prometheus /-/ready")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
