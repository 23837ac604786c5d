"""The operator's Helm chart, rendered by a real helm (built by hack/toolchain.sh): it lints, its RBAC
is exactly what the operator tests run with, the Deployment is restricted, and every object passes a
server-side dry-run on the real API server."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
import yaml
from walletplatform import install
from walletplatform.cli import core
from walletplatform.devenv import toolchain

from tests.integration.conftest import Cluster

pytestmark = pytest.mark.integration
NAMESPACE = "wallet-system"


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    helm = str(toolchain.ensure_binaries().helm)
    lint = subprocess.run([helm, "lint", "--strict", str(core.CHART_DIR)], capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    out = subprocess.run(
        [helm, "template", "wallet-operator", str(core.CHART_DIR), "-n", NAMESPACE],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def _rbac(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kinds = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    return sorted(
        (d for d in docs if d["kind"] in kinds),
        key=lambda d: (d["kind"], d["metadata"].get("namespace") or "", d["metadata"]["name"]),
    )


def test_chart_rbac_is_the_rbac_the_tests_run_with(rendered: list[dict[str, Any]]) -> None:
    assert _rbac(rendered) == _rbac(install.render_rbac(NAMESPACE))  # type: ignore[arg-type]


def test_with_namespaces_set_the_chart_binds_the_platform_rules_only_there() -> None:
    helm = str(toolchain.ensure_binaries().helm)
    out = subprocess.run(
        [
            helm,
            "template",
            "wallet-operator",
            str(core.CHART_DIR),
            "-n",
            NAMESPACE,
            "--set",
            "namespaces={team-a,team-b}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    docs = [doc for doc in yaml.safe_load_all(out) if doc]
    assert _rbac(docs) == _rbac(install.render_rbac(NAMESPACE, watched=("team-a", "team-b")))  # type: ignore[arg-type]
    cluster_wide = [d["roleRef"]["name"] for d in docs if d["kind"] == "ClusterRoleBinding"]
    assert cluster_wide == ["wallet-operator-crds"]  # only the CRD read rule
    # The admission webhook checks those namespaces only: the operator applies this same object.
    (config,) = [d for d in docs if d["kind"] == "ValidatingWebhookConfiguration"]
    assert config == install.render_webhook_configuration(
        install.service_client_config(NAMESPACE), watched=("team-a", "team-b")
    )


def test_the_webhook_is_the_object_the_operator_applies_and_its_service_reaches_ready_replicas(
    rendered: list[dict[str, Any]],
) -> None:
    (config,) = [d for d in rendered if d["kind"] == "ValidatingWebhookConfiguration"]
    assert config == install.render_webhook_configuration(install.service_client_config(NAMESPACE))
    (service,) = [d for d in rendered if d["kind"] == "Service" and d["metadata"]["name"] == "wallet-operator-webhook"]
    (deployment,) = [d for d in rendered if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert {"name": "webhook", "containerPort": 9443} in container["ports"]
    assert {"name": "WALLET_WEBHOOK_PORT", "value": "9443"} in container["env"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"  # ready once the webhook serves
    assert service["spec"]["ports"] == [{"name": "webhook", "port": 443, "targetPort": "webhook"}]


def test_operator_deployment_is_restricted_probed_and_bounded(rendered: list[dict[str, Any]]) -> None:
    deployment = next(d for d in rendered if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["serviceAccountName"] == "wallet-operator" and deployment["spec"]["replicas"] == 2
    assert (
        pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    )
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz" and container["readinessProbe"]
    assert container["resources"]["limits"]["memory"] and container["resources"]["requests"]["cpu"]
    assert {d["kind"] for d in rendered} >= {"Service", "ServiceMonitor", "PrometheusRule"}


def test_every_chart_object_passes_server_side_dry_run(rendered: list[dict[str, Any]], cluster: Cluster) -> None:
    cluster.client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}, "wallet-tests")
    for doc in rendered:
        cluster.client.apply(doc, "wallet-tests", dry_run=True)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "operator-admission", "namespace": "default"},
        "spec": next(d for d in rendered if d["kind"] == "Deployment")["spec"]["template"]["spec"],
    }
    restricted = f"restricted-{NAMESPACE}"
    cluster.client.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": restricted, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
        },
        "wallet-tests",
    )
    pod["metadata"]["namespace"] = restricted
    pod["spec"] = {**pod["spec"], "serviceAccountName": "default"}
    cluster.client.create(pod, dry_run=True)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("replicas=0", "at '/replicas': minimum: got 0, want 1"),
        ("image.pullPolicy=Sometimes", "at '/image/pullPolicy': value must be one of"),
        ("namespaces={Team_A}", "at '/namespaces/0'"),
        ("leaseSecond=15", "additional properties 'leaseSecond' not allowed"),
    ],
)
def test_a_bad_value_is_refused_with_its_path(value: str, error: str) -> None:
    helm = str(toolchain.ensure_binaries().helm)
    result = subprocess.run(
        [helm, "template", "wallet-operator", str(core.CHART_DIR), "--set", value],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0 and error in result.stderr, result.stderr


def test_the_dashboard_ships_in_a_configmap_for_grafanas_sidecar(rendered: list[dict[str, Any]]) -> None:
    (board,) = [
        d for d in rendered if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "wallet-platform-dashboard"
    ]
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    parsed = json.loads(board["data"]["wallet-platform.json"])
    assert parsed["uid"] == "wallet-platform" and len(parsed["panels"]) == 40


def test_two_replicas_get_a_disruption_budget_and_install_notes(rendered: list[dict[str, Any]]) -> None:
    (pdb,) = [d for d in rendered if d["kind"] == "PodDisruptionBudget"]
    assert pdb["spec"] == {
        "minAvailable": 1,
        "selector": {"matchLabels": {"app.kubernetes.io/name": "wallet-operator"}},
    }
    notes = (core.CHART_DIR / "templates" / "NOTES.txt").read_text()
    assert "get lease wallet-operator" in notes and "walletctl explain" in notes
