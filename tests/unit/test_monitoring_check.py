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


def test_a_service_monitor_becomes_the_job_prometheus_operator_would_make(cat: Catalog, tmp_path: pathlib.Path) -> None:
    (monitor,) = [o for o in render.render_platform(resolve_file(DEV_EXAMPLE, cat)) if o["kind"] == "ServiceMonitor"]
    (job,) = monitoring.scrape_configs(monitor, tmp_path / "kubeconfig")  # type: ignore[arg-type]
    assert job["job_name"] == "serviceMonitor/wallet-dev/wallet-dev-services/0"  # type: ignore[index]
    assert job["kubernetes_sd_configs"] == [  # type: ignore[index]
        {"role": "endpoints", "kubeconfig_file": str(tmp_path / "kubeconfig"), "namespaces": {"names": ["wallet-dev"]}}
    ]
    keep = [r for r in job["relabel_configs"] if r.get("action") == "keep"]  # type: ignore[index, union-attr]
    assert {"source_labels": ["__meta_kubernetes_endpoint_port_name"], "regex": "metrics", "action": "keep"} in keep
    assert {
        "source_labels": ["__meta_kubernetes_service_label_app_kubernetes_io_instance"],
        "regex": "wallet\\-dev",
        "action": "keep",
    } in keep
    targets = {r.get("target_label") for r in job["relabel_configs"]}  # type: ignore[index, union-attr]
    assert {"namespace", "service", "pod", "job", "endpoint"} <= targets
    assert job["honor_labels"] is False and job["scrape_interval"] == "15s"  # type: ignore[index]


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
