"""The pure parts of the live-series check (devenv/monitoring.py): a ServiceMonitor becomes the scrape
job prometheus-operator would make of it, and every alert and dashboard query is listed with what it
measures (an alert without its threshold)."""

from __future__ import annotations

import json
import pathlib

from walletplatform import install, render
from walletplatform.catalog import Catalog
from walletplatform.devenv import monitoring
from walletplatform.models import promql

from tests.conftest import DEV_EXAMPLE, ROOT, resolve_file


def test_selectors_are_read_from_the_parse_tree() -> None:
    query = '(sum(rate(r{c=~"5.."}[5m])) or on() vector(0)) / sum(rate(r[5m])) + max_over_time(up[5m:1m]) - x offset 5m'
    assert promql.selectors(query) == ['r{c=~"5.."}', "r{}", "up{}", "x{}"]
    assert promql.selectors("vector(0.5)") == []
    # The 5xx counter does not exist before the first error: the query defaults it, so it may be empty.
    assert promql.selectors(query, required=True) == ["r{}", "up{}", "x{}"]
    assert promql.selectors("absent(up) or sum(up) < 1", required=True) == ["up{}"]


def test_a_service_monitor_becomes_the_job_prometheus_operator_would_make(cat: Catalog, tmp_path: pathlib.Path) -> None:
    (monitor,) = [o for o in render.render_platform(resolve_file(DEV_EXAMPLE, cat)) if o["kind"] == "ServiceMonitor"]
    (job,) = monitoring.scrape_configs(monitor, tmp_path)  # type: ignore[arg-type]
    assert job == {
        "job_name": "serviceMonitor/wallet-dev/wallet-dev-services/0",
        "honor_labels": False,
        "scrape_interval": "15s",
        "metrics_path": "/metrics",
        "file_sd_configs": [
            {
                "files": [str(tmp_path / "serviceMonitor_wallet-dev_wallet-dev-services_0.json")],
                "refresh_interval": "5s",
            }
        ],
    }


class Listing:
    """The two lists ``targets`` reads (Services by selector, EndpointSlices by Service), as the API
    server answers them."""

    def __init__(self) -> None:
        self.selectors: list[tuple[str, str | None]] = []

    def list(self, api_version: str, kind: str, namespace: str, selector: str | None) -> list[dict[str, object]]:
        self.selectors.append((kind, selector))
        if kind == "Service":
            return [{"metadata": {"name": "wallet-dev-transaction"}}]
        ready = {"addresses": ["10.244.0.7"], "conditions": {"ready": True}, "targetRef": {"name": "tx-1"}}
        starting = {"addresses": ["10.244.0.8"], "conditions": {"ready": False}, "targetRef": {"name": "tx-2"}}
        return [
            {
                "ports": [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9090}],
                "endpoints": [ready, starting],
            }
        ]


def test_targets_are_the_ready_endpoints_of_the_named_port_labelled_as_prometheus_operator_does(
    cat: Catalog, tmp_path: pathlib.Path
) -> None:
    (monitor,) = [o for o in render.render_platform(resolve_file(DEV_EXAMPLE, cat)) if o["kind"] == "ServiceMonitor"]
    listing = Listing()
    assert monitoring.write_targets(listing, [monitor], tmp_path) == 1  # type: ignore[arg-type, list-item]
    written = json.loads((tmp_path / "serviceMonitor_wallet-dev_wallet-dev-services_0.json").read_text())
    assert written == [
        {
            "targets": ["10.244.0.7:9090"],
            "labels": {
                "namespace": "wallet-dev",
                "service": "wallet-dev-transaction",
                "pod": "tx-1",
                "job": "wallet-dev-transaction",
                "endpoint": "metrics",
            },
        }
    ]
    assert listing.selectors == [
        ("Service", "app.kubernetes.io/instance=wallet-dev,app.kubernetes.io/part-of=wallet-platform"),
        ("EndpointSlice", "kubernetes.io/service-name=wallet-dev-transaction"),
    ]


def test_every_alert_is_checked_without_its_threshold_and_every_dashboard_query_with_its_variables(
    cat: Catalog,
) -> None:
    resolved = resolve_file(DEV_EXAMPLE, cat)
    rules = [o for o in render.render_platform(resolved) if o["kind"] == "PrometheusRule"]
    rules.append(install.render_operator_rules("wallet-system"))
    board = json.loads((ROOT / "charts" / "wallet-operator" / "dashboards" / "wallet-platform.json").read_text())
    found = monitoring.expressions(rules, board, {"namespace": "wallet-dev", "platform": "wallet-dev"})  # type: ignore[arg-type]
    by_source = {e.source: e for e in found}
    ratio = by_source["alert WalletErrorRatioHigh (transaction)"]
    assert ratio.must_return and not ratio.query.endswith(("> 0.001", "> 0.005", "> 0.01"))
    assert ">" not in ratio.query and "or on () vector(0)" in ratio.query.replace("on()", "on ()")
    # Empty by design while the operator leads: its selectors are checked, not its result.
    assert not by_source["alert WalletOperatorDown (wallet-operator)"].must_return
    assert all("$" not in e.query for e in found)
    assert not any(e.query.startswith("vector(") for e in found)  # constants select nothing to check
    assert sum(e.source.startswith("panel ") for e in found) > 20
