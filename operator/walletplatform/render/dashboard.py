"""The Grafana dashboard of the platform, generated from the catalog like the SLO alerts: per service
its SLO figures (p95 latency and 5xx ratio against the catalog's targets), its replicas against the
HPA's desired count and the scaling floor, and its demand against the scaling engine's forecast; then
the operator's own reconcile and Prometheus-trouble metrics. ``walletctl chart`` writes it into the
operator chart, which ships it in a ConfigMap for Grafana's dashboard sidecar.

Series: ``http_request*`` from the services (the reference service's metrics, scraped through the
platform's ServiceMonitor, whose ``service`` label is the Kubernetes Service name), ``kube_*`` from
kube-state-metrics, ``wallet_operator_*`` from the operator."""

from __future__ import annotations

from walletplatform.models import common, service

UID = "wallet-platform"
# Grafana variables in the queries; the queries parse as PromQL with them in place.
NAMESPACE, PLATFORM = "$namespace", "$platform"
PANEL_W, PANEL_H = 6, 7


def _target(expr: str, legend: str) -> common.JsonValue:
    return {"expr": expr, "legendFormat": legend, "datasource": {"type": "prometheus", "uid": "${datasource}"}}


def _panel(title: str, targets: list[common.JsonValue], unit: str, x: int, y: int) -> common.JsonValue:
    return {
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": PANEL_H, "w": PANEL_W, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": targets,
    }


def service_panels(svc: service.ServiceDefinition, y: int) -> list[common.JsonValue]:
    """One row of four panels for one catalog service."""
    job = f"{PLATFORM}-{svc.name}"
    sel = f'namespace="{NAMESPACE}",service="{job}"'
    hpa = f'namespace="{NAMESPACE}",horizontalpodautoscaler="{job}"'
    mine = f'namespace="{NAMESPACE}",service="{svc.name}"'
    slo_s, ratio = svc.slo.p95_latency_ms / 1000, svc.slo.error_rate_percent / 100
    requests = f"sum(rate(http_requests_total{{{sel}}}[5m]))"
    return [
        {"type": "row", "title": svc.name, "collapsed": False, "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}},
        _panel(
            f"{svc.name}: p95 latency (SLO {svc.slo.p95_latency_ms} ms)",
            [
                _target(
                    f"histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{{{sel}}}[5m])))",
                    "p95",
                ),
                _target(f"vector({slo_s:g})", "SLO"),
            ],
            "s",
            0,
            y + 1,
        ),
        _panel(
            f"{svc.name}: 5xx ratio (SLO {svc.slo.error_rate_percent:g}%)",
            [
                _target(
                    f'(sum(rate(http_requests_total{{{sel},code=~"5.."}}[5m])) or on() vector(0)) / {requests}',
                    "5xx ratio",
                ),
                _target(f"vector({ratio:g})", "SLO"),
            ],
            "percentunit",
            PANEL_W,
            y + 1,
        ),
        _panel(
            f"{svc.name}: replicas, HPA desired and floor",
            [
                _target(
                    f'kube_deployment_status_replicas_available{{namespace="{NAMESPACE}",deployment="{job}"}}',
                    "available",
                ),
                _target(f"kube_horizontalpodautoscaler_status_desired_replicas{{{hpa}}}", "HPA desired"),
                _target(f"kube_horizontalpodautoscaler_spec_min_replicas{{{hpa}}}", "floor (minReplicas)"),
                _target(f"kube_horizontalpodautoscaler_spec_max_replicas{{{hpa}}}", "maxReplicas"),
            ],
            "short",
            2 * PANEL_W,
            y + 1,
        ),
        _panel(
            f"{svc.name}: demand and forecast",
            [
                _target(requests, "requests/s"),
                _target(f"max(wallet_operator_forecast_demand{{{mine}}})", "forecast peak (policy's unit)"),
                _target(f"max(wallet_operator_scaling_floor{{{mine}}})", "floor decided"),
            ],
            "short",
            3 * PANEL_W,
            y + 1,
        ),
    ]


def operator_panels(y: int) -> list[common.JsonValue]:
    return [
        {"type": "row", "title": "operator", "collapsed": False, "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}},
        _panel(
            "reconciles per second, by trigger",
            [_target("sum by (trigger) (rate(wallet_operator_reconcile_duration_seconds_count[5m]))", "{{trigger}}")],
            "ops",
            0,
            y + 1,
        ),
        _panel(
            "reconcile p95 duration",
            [
                _target(
                    "histogram_quantile(0.95, sum by (le) "
                    "(rate(wallet_operator_reconcile_duration_seconds_bucket[5m])))",
                    "p95",
                )
            ],
            "s",
            PANEL_W,
            y + 1,
        ),
        _panel(
            "reconcile errors, by reason",
            [_target("sum by (reason) (increase(wallet_operator_reconcile_errors_total[1h]))", "{{reason}}")],
            "short",
            2 * PANEL_W,
            y + 1,
        ),
        _panel(
            "Prometheus trouble, by kind; leader",
            [
                _target("sum by (kind) (increase(wallet_operator_prometheus_trouble_total[1h]))", "{{kind}}"),
                _target("sum(wallet_operator_leader)", "leaders"),
            ],
            "short",
            3 * PANEL_W,
            y + 1,
        ),
    ]


def render_dashboard(services: list[service.ServiceDefinition]) -> dict[str, common.JsonValue]:
    """The dashboard JSON (Grafana schema 39) for the catalog's services, in catalog order."""
    panels: list[common.JsonValue] = []
    y = 0
    for svc in services:
        panels += service_panels(svc, y)
        y += PANEL_H + 1
    panels += operator_panels(y)
    for number, panel in enumerate(panels, start=1):
        assert isinstance(panel, dict)
        panel["id"] = number
    return {
        "uid": UID,
        "title": "Wallet platform",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "tags": ["wallet-platform"],
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"},
                {
                    "name": "namespace",
                    "type": "query",
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "query": "label_values(kube_horizontalpodautoscaler_spec_min_replicas, namespace)",
                    "refresh": 2,
                },
                {"name": "platform", "type": "textbox", "query": "wallet-prod", "label": "WalletPlatform"},
            ]
        },
        "panels": panels,
    }
