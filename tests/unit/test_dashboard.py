"""The Grafana dashboard generated from the catalog: a row of four panels per service with its SLO
targets, the operator's row, every query valid PromQL, and only metrics that exist."""

from __future__ import annotations

import re

from prometheus_client.metrics import MetricWrapperBase
from walletplatform import catalog
from walletplatform.controller import metrics
from walletplatform.models import promql
from walletplatform.render import dashboard


def queries(board: dict) -> list[str]:
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def test_each_service_has_its_slos_replicas_and_forecast(cat: catalog.Catalog) -> None:
    board = dashboard.render_dashboard(list(cat.values()))
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows == [*cat, "operator"]
    titles = [p["title"] for p in board["panels"] if p["type"] != "row"]
    for name, svc in cat.items():
        assert f"{name}: p95 latency (SLO {svc.slo.p95_latency_ms} ms)" in titles
        assert f"{name}: 5xx ratio (SLO {svc.slo.error_rate_percent:g}%)" in titles
        assert f"{name}: replicas, HPA desired and floor" in titles and f"{name}: demand and forecast" in titles
    assert f"vector({cat['transaction'].slo.p95_latency_ms / 1000:g})" in queries(board)
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])


def test_every_query_parses_and_names_only_metrics_that_exist(cat: catalog.Catalog) -> None:
    board = dashboard.render_dashboard(list(cat.values()))
    # prometheus_client keeps a counter's name without _total, a histogram's without its suffixes.
    defined = {value._name for value in vars(metrics).values() if isinstance(value, MetricWrapperBase)}
    used = set()
    for expr in queries(board):
        promql.check_promql(expr)
        used |= {re.sub(r"_(bucket|count|sum|total)$", "", n) for n in re.findall(r"\bwallet_operator_\w+", expr)}
    assert used and used <= defined, used - defined
