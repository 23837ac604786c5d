"""Real Prometheus (Debian package) backfilled from a trace with promtool answers PromQL range
queries through prometheus-api-client, and the engine's parser reads the answer."""

from __future__ import annotations

import contextlib
import datetime
import http.server
import json
import math
import pathlib
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from prometheus_api_client import PrometheusConnect
from walletplatform.backtest import trace
from walletplatform.clients import prometheus as prometheus_client
from walletplatform.devenv import prometheus
from walletplatform.forecast import series
from walletplatform.scaling import demand

pytestmark = pytest.mark.integration


def synthetic_trace() -> str:
    """Three weeks of half-hourly demand with a daily cycle, as a trace CSV (timestamps and counts)."""
    rows = ["timestamp,value"]
    for i in range(21 * 48):
        rows.append(f"{1700000000 + 1800 * i},{10000 + 8000 * math.sin(2 * math.pi * i / 48):.0f}")
    return "\n".join(rows)


def test_backfilled_trace_answers_range_query(tmp_path: pathlib.Path) -> None:
    native = trace.read_trace(synthetic_trace(), "synthetic.csv").data
    two_weeks = int(14 * series.DAY / native.step)
    now = time.time()
    # the last two weeks of the trace, shifted to end an hour ago, as requests per second
    shifted = series.Series(now - 3600 - two_weeks * native.step, native.step, native.values[-two_weeks:] / native.step)
    server = prometheus.Prometheus(tmp_path)
    server.backfill(prometheus.openmetrics(shifted, {"service": "wallet-dev-transaction"}))
    server.start()
    try:
        client = PrometheusConnect(url=server.url, disable_ssl=True)
        start, end = shifted.start + 86400, shifted.end - 1800
        answer = client.custom_query_range(
            'sum(rate(http_requests_total{service="wallet-dev-transaction"}[1h]))',
            start_time=_dt(start),
            end_time=_dt(end),
            step="1800",
        )
        expected_points = int((end - start) // 1800) + 1
        assert len(answer) == 1 and len(answer[0]["values"]) == expected_points
        parsed = demand.parse_matrix(answer, 1800)
        assert isinstance(parsed, series.Series)
        middle = len(parsed) // 2
        original = shifted.values[int((parsed.start - shifted.start) // native.step) + middle]
        assert parsed.values[middle] == pytest.approx(original, rel=0.6)
        empty = client.custom_query_range(
            'sum(rate(http_requests_total{service="nope"}[5m]))', start_time=_dt(start), end_time=_dt(end), step="1800"
        )
        assert isinstance(demand.parse_matrix(empty, 1800), demand.Trouble)
        bad = prometheus_client.Prometheus(server.url, 5).fetch_history("sum(rate(", 86400, 60, end)
        assert isinstance(bad, demand.Trouble) and bad.kind == "error" and "parse error" in bad.detail, bad
    finally:
        server.stop()


def test_unreachable_hung_and_503_prometheus_are_named_and_asked_once() -> None:
    hits: list[str] = []

    class Unavailable(http.server.BaseHTTPRequestHandler):
        """What a proxy in front of a Prometheus with no ready endpoint answers."""

        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(503)
            self.end_headers()
            self.wfile.write(b"no healthy upstream")

        def log_message(self, *args: object) -> None:
            pass

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    hung = socket.create_server(("127.0.0.1", 0))  # accepts connections, never answers
    accepted: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):  # the listener closed at the end
            while True:
                accepted.append(hung.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Unavailable)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    now = time.time()

    def fetch(port: int) -> object:
        return prometheus_client.Prometheus(f"http://127.0.0.1:{port}", 1).fetch_history("up", 3600, 60, now)

    try:
        unreachable = fetch(closed_port)
        assert isinstance(unreachable, demand.Trouble) and unreachable.kind == "unavailable", unreachable
        timeout = fetch(hung.getsockname()[1])
        assert isinstance(timeout, demand.Trouble) and timeout.kind == "timeout", timeout
        assert len(accepted) == 1, "one attempt: the engine tries again at its next tick"
        answered = fetch(proxy.server_address[1])
        assert isinstance(answered, demand.Trouble) and answered.kind == "unavailable", answered
        assert "503" in answered.detail and len(hits) == 1, (answered, hits)
        assert "upstream" not in answered.detail  # the body is never copied into status
    finally:
        proxy.shutdown()
        hung.close()
        for conn in accepted:
            conn.close()


def _dt(epoch: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC)


def _backtest(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-W", "error", "-m", "walletplatform.cli.main", "backtest", "--peak-replicas", "10"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=600, check=False)


def test_backtest_reads_its_history_from_prometheus(tmp_path: pathlib.Path) -> None:
    now = time.time()
    days = 9
    minutes = np.arange(days * 1440)
    rate = 50 + 40 * np.sin(2 * np.pi * minutes / 1440)  # requests per second, a daily cycle
    history = series.Series(now - 600 - days * series.DAY, 60.0, rate)
    server = prometheus.Prometheus(tmp_path)
    server.backfill(prometheus.openmetrics(history, {"service": "wallet-dev-transaction"}))
    server.start()
    query = 'sum(rate(http_requests_total{service="wallet-dev-transaction"}[5m]))'
    try:
        result = _backtest("--prometheus", server.url, "--query", query, "--since", f"{days}d", "--json")
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        out = json.loads(result.stdout)
        assert out["meta"]["minutes_scored"] > 1.5 * 1440  # the days after the first week
        assert out["meta"]["trace_notes"][0] == f"history from {server.url}: {query} over {days}d at 1m"
        assert out["strategies"]["reactive"]["replica_hours"] > 0
        # The query can come from a ScalingPolicy, as the operator would run it.
        policy = tmp_path / "policy.yaml"
        policy.write_text(
            "apiVersion: wallet.platform.io/v1alpha1\nkind: ScalingPolicy\nmetadata: {name: p, namespace: n}\n"
            f"spec:\n  platformRef: wallet-dev\n  services: [transaction]\n  predictive:\n    query: '{query}'\n"
        )
        result = _backtest("--prometheus", server.url, "--policy", str(policy), "--since", f"{days}d", "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["meta"]["minutes_scored"] == out["meta"]["minutes_scored"]
        result = _backtest("--prometheus", server.url, "--query", "sum(rate(nothing_total[5m]))", "--since", "9d")
        assert result.returncode == 1
        assert (
            result.stderr.strip()
            == f"--prometheus: {server.url}: empty: the query returned no series (not read as zero demand)"
        )
    finally:
        server.stop()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    result = _backtest("--prometheus", f"http://127.0.0.1:{port}", "--query", query, "--since", "9d")
    assert result.returncode == 1 and result.stderr.startswith(f"--prometheus: http://127.0.0.1:{port}: unavailable:")
