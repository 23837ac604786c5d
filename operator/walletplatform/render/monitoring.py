"""ServiceMonitor and PrometheusRule (monitoring.coreos.com/v1) of a platform.

Alerts per service are built from the catalog SLOs: p95 latency, error ratio and saturation (the HPA
pinned at its maximum, so demand may exceed what the service can add)."""

from __future__ import annotations

from walletplatform.catalog import ResolvedPlatform
from walletplatform.models import common
from walletplatform.render import labels


def render_service_monitor(platform: ResolvedPlatform) -> common.Manifest | None:
    if not platform.spec.monitoring.service_monitor:
        return None
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": labels.metadata(f"{platform.name}-services", platform.namespace, platform.name, "monitoring"),
        "spec": {
            "selector": {
                "matchLabels": {
                    "app.kubernetes.io/instance": platform.name,
                    "app.kubernetes.io/part-of": labels.PART_OF,
                }
            },
            "namespaceSelector": {"matchNames": [platform.namespace]},
            "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "15s"}],
        },
    }


def render_prometheus_rule(platform: ResolvedPlatform) -> common.Manifest | None:
    if not platform.spec.monitoring.prometheus_rule:
        return None
    groups: list[common.JsonValue] = []
    for svc in platform.services:
        job = labels.service_name(platform.name, svc.name)
        sel = f'namespace="{platform.namespace}",service="{job}"'
        hpa = f'namespace="{platform.namespace}",horizontalpodautoscaler="{job}"'
        latency_s = svc.slo.p95_latency_ms / 1000
        ratio = svc.slo.error_rate_percent / 100
        alert_labels = {"service": svc.name, "platform": platform.name}
        groups.append(
            {
                "name": f"{svc.name}.slo",
                "rules": [
                    {
                        "alert": "WalletLatencyP95High",
                        "expr": f"histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket"
                        f"{{{sel}}}[5m]))) > {latency_s:g}",
                        "for": "10m",
                        "labels": {**alert_labels, "severity": "warning"},
                        "annotations": {"summary": f"{svc.name} p95 latency above {svc.slo.p95_latency_ms} ms"},
                    },
                    {
                        "alert": "WalletErrorRatioHigh",
                        # No 5xx series until the first error: none is a ratio of 0, not no ratio.
                        "expr": f'(sum(rate(http_requests_total{{{sel},code=~"5.."}}[5m])) or on() vector(0)) / '
                        f"sum(rate(http_requests_total{{{sel}}}[5m])) > {ratio:g}",
                        "for": "5m",
                        "labels": {**alert_labels, "severity": "critical"},
                        "annotations": {"summary": f"{svc.name} 5xx ratio above {svc.slo.error_rate_percent:g}%"},
                    },
                    {
                        "alert": "WalletSaturated",
                        "expr": f"kube_horizontalpodautoscaler_status_current_replicas{{{hpa}}} >= "
                        f"kube_horizontalpodautoscaler_spec_max_replicas{{{hpa}}}",
                        "for": "15m",
                        "labels": {**alert_labels, "severity": "warning"},
                        "annotations": {
                            "summary": f"{svc.name} has been at its HPA maximum for 15 minutes; "
                            f"it cannot absorb more than {svc.slo.throughput} "
                            f"{svc.slo.throughput_unit.value}"
                        },
                    },
                ],
            }
        )
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": labels.metadata(f"{platform.name}-slo", platform.namespace, platform.name, "monitoring"),
        "spec": {"groups": groups},
    }
