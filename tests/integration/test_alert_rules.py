"""The SLO alerts the renderer writes, evaluated by Prometheus's own rule engine: ``promtool check
rules`` accepts them, and ``promtool test rules`` shows each alert of each service firing on a
synthetic breach and staying quiet on normal traffic (the series are the ones the reference service
and kube-state-metrics export)."""

from __future__ import annotations

import pathlib
import subprocess
from typing import Any

import pytest
import yaml
from walletplatform import catalog, install, render
from walletplatform.devenv import prometheus

from tests.conftest import DEV_EXAMPLE, resolve_file

pytestmark = pytest.mark.integration
MINUTES = 40


def counter(per_minute: float) -> str:
    return f"0+{per_minute:g}x{MINUTES}"


def series_for(namespace: str, job: str, slo_s: float, breach: bool) -> list[dict[str, str]]:
    """A minute of traffic repeated: 600 requests, 5xx and latency either fine or breaching, and the
    HPA below or at its maximum."""
    sel = f'namespace="{namespace}",service="{job}"'
    errors = 120 if breach else 0  # 20% of requests, or none
    fast, slow = (0, 600) if breach else (600, 0)  # under half the SLO, or above it
    out = [
        {"series": f'http_requests_total{{{sel},code="200"}}', "values": counter(600 - errors)},
        {"series": f'http_requests_total{{{sel},code="500"}}', "values": counter(errors)},
        {"series": f'http_request_duration_seconds_bucket{{{sel},le="{slo_s / 2:g}"}}', "values": counter(fast)},
        {"series": f'http_request_duration_seconds_bucket{{{sel},le="{slo_s * 2:g}"}}', "values": counter(fast + slow)},
        {"series": f'http_request_duration_seconds_bucket{{{sel},le="+Inf"}}', "values": counter(600)},
    ]
    hpa_sel = f'namespace="{namespace}",horizontalpodautoscaler="{job}"'
    out += [
        {"series": f"kube_horizontalpodautoscaler_spec_max_replicas{{{hpa_sel}}}", "values": f"10x{MINUTES}"},
        {
            "series": f"kube_horizontalpodautoscaler_status_current_replicas{{{hpa_sel}}}",
            "values": f"{10 if breach else 4}x{MINUTES}",
        },
    ]
    return out


def test_every_slo_alert_fires_on_a_breach_and_stays_quiet_otherwise(
    cat: catalog.Catalog, tmp_path: pathlib.Path
) -> None:
    resolved = resolve_file(DEV_EXAMPLE, cat)
    (rule,) = [o for o in render.render_platform(resolved) if o["kind"] == "PrometheusRule"]
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))  # type: ignore[index]
    promtool = str(prometheus.binary("promtool"))
    checked = subprocess.run([promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0 and "SUCCESS: 21 rules found" in checked.stdout, checked.stdout + checked.stderr

    groups = {g["name"]: g["rules"] for g in rule["spec"]["groups"]}  # type: ignore[index]
    tests: list[dict[str, Any]] = []
    for svc in resolved.services:
        job = f"{resolved.name}-{svc.name}"
        # The saturation alert keeps the labels of the HPA's series; the two ratios keep none.
        extra = {"WalletSaturated": {"namespace": resolved.namespace, "horizontalpodautoscaler": job}}
        for breach in (True, False):
            checks = [
                {
                    "eval_time": f"{MINUTES - 5}m",
                    "alertname": alert["alert"],
                    "exp_alerts": [
                        {
                            "exp_labels": {**alert["labels"], **extra.get(alert["alert"], {})},
                            "exp_annotations": alert["annotations"],
                        }
                    ]
                    if breach
                    else [],
                }
                for alert in groups[f"{svc.name}.slo"]
            ]
            series = series_for(resolved.namespace, job, svc.slo.p95_latency_ms / 1000, breach)
            tests.append({"interval": "1m", "input_series": series, "alert_rule_test": checks})
    test_file = tmp_path / "tests.yaml"
    test_file.write_text(yaml.safe_dump({"rule_files": [str(rules_file)], "evaluation_interval": "1m", "tests": tests}))
    result = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "SUCCESS" in result.stdout


def test_the_operators_own_alerts_fire_when_nobody_leads_or_errors_persist(tmp_path: pathlib.Path) -> None:
    rule = install.render_operator_rules("wallet-system")
    rules_file = tmp_path / "operator-rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))  # type: ignore[index]
    promtool = str(prometheus.binary("promtool"))
    checked = subprocess.run([promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0 and "SUCCESS: 3 rules found" in checked.stdout, checked.stdout + checked.stderr
    (group,) = rule["spec"]["groups"]  # type: ignore[index]
    alerts = {r["alert"]: r for r in group["rules"]}

    def expect(name: str, labels: dict[str, str], summary: str) -> dict[str, Any]:
        return {
            "eval_time": f"{MINUTES - 5}m",
            "alertname": name,
            "exp_alerts": [
                {"exp_labels": {**alerts[name]["labels"], **labels}, "exp_annotations": {"summary": summary}}
            ],
        }

    down = {
        "interval": "1m",
        "input_series": [{"series": 'wallet_operator_leader{pod="a"}', "values": f"0x{MINUTES}"}],
        "alert_rule_test": [expect("WalletOperatorDown", {}, alerts["WalletOperatorDown"]["annotations"]["summary"])],
    }
    failing = {
        "interval": "1m",
        "input_series": [
            {"series": 'wallet_operator_leader{pod="a"}', "values": f"1x{MINUTES}"},
            {"series": 'wallet_operator_reconcile_errors_total{reason="ApplyFailed"}', "values": counter(1)},
            {"series": 'wallet_operator_prometheus_trouble_total{kind="timeout"}', "values": counter(1)},
        ],
        "alert_rule_test": [
            {"eval_time": f"{MINUTES - 5}m", "alertname": "WalletOperatorDown", "exp_alerts": []},
            expect("WalletOperatorReconcileErrors", {"reason": "ApplyFailed"}, "Reconciles keep failing (ApplyFailed)"),
            expect(
                "WalletOperatorPrometheusTrouble",
                {"kind": "timeout"},
                "The scaling engine's demand queries keep failing (timeout): predictive floors are held, then dropped",
            ),
        ],
    }
    healthy = {
        "interval": "1m",
        "input_series": [
            {"series": 'wallet_operator_leader{pod="a"}', "values": f"1x{MINUTES}"},
            {"series": 'wallet_operator_reconcile_errors_total{reason="ApplyFailed"}', "values": f"3x{MINUTES}"},
        ],
        "alert_rule_test": [{"eval_time": f"{MINUTES - 5}m", "alertname": name, "exp_alerts": []} for name in alerts],
    }
    test_file = tmp_path / "operator-tests.yaml"
    test_file.write_text(
        yaml.safe_dump(
            {"rule_files": [str(rules_file)], "evaluation_interval": "1m", "tests": [down, failing, healthy]}
        )
    )
    result = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
