"""The operator in-cluster, installed by its Helm chart from its locally built image, and the example
platform's services running the reference wallet service on the real node.

Faults and figures: the leader pod is deleted (no grace): the standby takes the Lease, and the time
to a new leader is printed; a service pod and a whole service Deployment are deleted: both come back;
``helm uninstall`` leaves none of the chart's objects behind."""

from __future__ import annotations

import base64
import contextlib
import ssl
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from walletplatform.clients import kube
from walletplatform.devenv import chart, cluster, processes

from tests.conftest import ROOT
from tests.integration import platforms

pytestmark = pytest.mark.integration
NS = "wallet-incluster"
# Short periods so fail-over and repair show in seconds (the chart's defaults: 15 s and 60 s).
VALUES = {"leaseSeconds": 6, "resyncSeconds": 5, "dependencyRetrySeconds": 5}
# Their pods need the Secret CloudNativePG creates for the application owner.
POSTGRES_SERVICES = ("user", "account", "transaction", "payment", "compliance")


@pytest.fixture(scope="module")
def client(node_cluster: cluster.LocalCluster) -> kube.Kube:
    assert node_cluster.client is not None and node_cluster.plane is not None
    chart.install(node_cluster.binaries.helm, node_cluster.plane.kubeconfig, dict(VALUES))
    return node_cluster.client


def holder(client: kube.Kube) -> str | None:
    for lease in client.list("coordination.k8s.io/v1", "Lease", chart.NAMESPACE):
        name = (lease.get("spec") or {}).get("holderIdentity")
        if name and name.startswith(chart.RELEASE):
            return str(name)
    return None


def operator_pods(client: kube.Kube) -> list[dict[str, Any]]:
    return client.list("v1", "Pod", chart.NAMESPACE, selector="app.kubernetes.io/name=wallet-operator")


def ready(pod: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions") or []
    )


def get_text(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return int(response.status), response.read().decode()


def test_two_replicas_run_one_leads_and_serve_liveness_and_metrics(client: kube.Kube) -> None:
    processes.wait_until(lambda: holder(client) is not None, 90, "an operator replica leading")
    pods = operator_pods(client)
    assert len(pods) == 2 and all(ready(p) for p in pods)
    roles = {}
    for pod in pods:
        ip = pod["status"]["podIP"]
        roles[pod["metadata"]["name"]] = get_text(f"http://{ip}:8081/healthz")
        status, metrics = get_text(f"http://{ip}:8080/metrics")
        assert status == 200 and "wallet_" in metrics
    assert sorted(body for _, body in roles.values()) == ["leader", "standby"]
    assert roles[str(holder(client))] == (200, "leader")
    # Both replicas answer admission reviews, with the one certificate of the Secret; the API server
    # reaches them through the chart's Service and trusts the CA the operator put in the configuration.
    secret = client.get("v1", "Secret", "wallet-operator-webhook-cert", chart.NAMESPACE)
    assert secret is not None and secret["metadata"]["ownerReferences"][0]["name"] == "wallet-operator-webhook"
    served = {ssl.get_server_certificate((pod["status"]["podIP"], 9443)).strip() for pod in pods}
    assert served == {base64.b64decode(secret["data"]["tls.crt"]).decode().strip()}
    bad = {
        "apiVersion": "wallet.platform.io/v1alpha1",
        "kind": "WalletPlatform",
        "metadata": {"name": "refused", "namespace": chart.NAMESPACE},
        "spec": {"services": [{"name": "ledger"}]},
    }
    with pytest.raises(kube.ApiError) as caught:
        client.create(bad)
    assert "denied the request: spec.services[0].name: 'ledger' is not a catalog service" in caught.value.message


def test_deleting_the_leader_pod_makes_the_standby_lead(client: kube.Kube) -> None:
    processes.wait_until(lambda: holder(client) is not None, 90, "an operator replica leading")
    first = str(holder(client))
    started = time.monotonic()
    client.delete_now("v1", "Pod", first, chart.NAMESPACE)
    processes.wait_until(lambda: holder(client) not in (None, first), 4 * VALUES["leaseSeconds"], "a new leader")
    print(f"\nnew leader {holder(client)} {time.monotonic() - started:.1f}s after the leader pod was deleted")
    processes.wait_until(lambda: len([p for p in operator_pods(client) if ready(p)]) == 2, 120, "two replicas again")


def test_the_example_platform_runs_under_restricted_and_says_what_each_service_waits_for(client: kube.Kube) -> None:
    labels = {"pod-security.kubernetes.io/enforce": "restricted"}
    client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": labels}}, "wallet-tests")
    doc = platforms.platform_doc(ROOT / "examples" / "walletplatform.yaml", NS)
    doc["spec"]["monitoring"] = {"serviceMonitor": False, "prometheusRule": False}
    # The autoscaling test below: at most 3 gateways, and a scale-down that shows within a minute.
    gateway_spec = doc["spec"]["services"][0]
    assert gateway_spec["name"] == "api-gateway"
    gateway_spec["maxReplicas"] = 3
    gateway_spec["behavior"] = {
        "scaleUp": {"stabilizationWindowSeconds": 0, "policies": [{"type": "Pods", "value": 2, "periodSeconds": 15}]},
        "scaleDown": {
            "stabilizationWindowSeconds": 20,
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
        },
    }
    platforms.apply_platform(client, doc)
    selector = f"app.kubernetes.io/instance={doc['metadata']['name']}"

    def pods_of(service: str) -> list[dict[str, Any]]:
        return client.list("v1", "Pod", NS, selector=f"{selector},app.kubernetes.io/name={service}")

    def waiting(pod: dict[str, Any]) -> str:
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        state = (statuses[0].get("state") or {}).get("waiting") if statuses else None
        return f"{state.get('reason')}: {state.get('message')}" if state else ""

    processes.wait_until(
        lambda: pods_of("api-gateway") and all(ready(p) for p in pods_of("api-gateway")), 180, "api-gateway Ready"
    )
    # This module's node runs no data-tier operators (test_data_tier.py runs the real ones): each
    # other service runs or waits and says exactly on what, as it would while the data tier is down.
    # (Each pod first waits in ContainerCreating, then on the Secret: wait for all of them.)
    processes.wait_until(
        lambda: (
            all(pods_of(svc) for svc in POSTGRES_SERVICES)
            and all(
                'secret "wallet-dev-pg-app" not found' in waiting(p) for svc in POSTGRES_SERVICES for p in pods_of(svc)
            )
        ),
        120,
        "every Postgres-backed service waiting for the Secret CloudNativePG creates",
    )
    processes.wait_until(
        lambda: all((p.get("status") or {}).get("phase") == "Running" for p in pods_of("notification")),
        60,
        "notification running",
    )
    (notification,) = pods_of("notification")
    try:
        get_text(f"http://{notification['status']['podIP']}:8080/readyz")
        raise AssertionError("notification is ready without its Redis queue")
    except urllib.error.HTTPError as exc:
        assert exc.code == 503 and "redis" in exc.read().decode()


def gateway_replicas(client: kube.Kube) -> tuple[int, int]:
    """(pods Ready, the HPA's desired replicas) of the api-gateway."""
    pods = client.list("v1", "Pod", NS, selector="app.kubernetes.io/name=api-gateway")
    hpa = client.get("autoscaling/v2", "HorizontalPodAutoscaler", "wallet-dev-api-gateway", NS) or {}
    return sum(1 for p in pods if ready(p)), int((hpa.get("status") or {}).get("desiredReplicas") or 0)


def test_cpu_load_scales_a_service_up_and_back_down(client: kube.Kube) -> None:
    service = client.get("v1", "Service", "wallet-dev-api-gateway", NS)
    assert service is not None
    url = f"http://{service['spec']['clusterIP']}:8080/v1/work"
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                urllib.request.urlopen(url, timeout=5).read()

    workers = [threading.Thread(target=load, daemon=True) for _ in range(4)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    try:
        processes.wait_until(lambda: gateway_replicas(client)[0] >= 2, 240, "a second api-gateway pod Ready under load")
        print(f"\nunder CPU load: {gateway_replicas(client)} (ready, desired) after {time.monotonic() - started:.0f}s")
    finally:
        stop.set()
        for worker in workers:
            worker.join(10)
    stopped = time.monotonic()
    processes.wait_until(lambda: gateway_replicas(client) == (1, 1), 240, "api-gateway back to one pod")
    print(f"load stopped: back to one pod after {time.monotonic() - stopped:.0f}s")


def test_a_deleted_pod_and_a_deleted_deployment_come_back(client: kube.Kube) -> None:
    name = "wallet-dev-notification"
    before = client.list("v1", "Pod", NS, selector="app.kubernetes.io/name=api-gateway")
    assert before
    client.delete_now("v1", "Pod", before[0]["metadata"]["name"], NS)
    client.delete("apps/v1", "Deployment", "wallet-dev-notification", NS)

    def back() -> bool:
        gateway = client.list("v1", "Pod", NS, selector="app.kubernetes.io/name=api-gateway")
        notification = client.list("v1", "Pod", NS, selector="app.kubernetes.io/name=notification")
        fresh = [p for p in gateway if p["metadata"]["name"] != before[0]["metadata"]["name"] and ready(p)]
        running = [p for p in notification if (p.get("status") or {}).get("phase") == "Running"]
        return bool(fresh) and bool(running) and client.get("apps/v1", "Deployment", name, NS) is not None

    processes.wait_until(back, 120, "the deleted pod and Deployment back")


CHART_OBJECTS = (
    ("apps/v1", "Deployment", chart.NAMESPACE, "wallet-operator"),
    ("policy/v1", "PodDisruptionBudget", chart.NAMESPACE, "wallet-operator"),
    ("monitoring.coreos.com/v1", "PrometheusRule", chart.NAMESPACE, "wallet-operator"),
    ("v1", "Service", chart.NAMESPACE, "wallet-operator-metrics"),
    ("v1", "Service", chart.NAMESPACE, "wallet-operator-webhook"),
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", None, "wallet-operator"),
    ("v1", "ServiceAccount", chart.NAMESPACE, "wallet-operator"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", None, "wallet-operator"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", None, "wallet-operator"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", None, "wallet-operator-crds"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", None, "wallet-operator-crds"),
    ("rbac.authorization.k8s.io/v1", "Role", chart.NAMESPACE, "wallet-operator"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", chart.NAMESPACE, "wallet-operator"),
)


def test_helm_uninstall_leaves_nothing_of_the_operator(node_cluster: cluster.LocalCluster, client: kube.Kube) -> None:
    assert node_cluster.plane is not None
    present = [kind for api, kind, ns, name in CHART_OBJECTS if client.get(api, kind, name, ns) is not None]
    assert len(present) == len(CHART_OBJECTS), present
    chart.uninstall(node_cluster.binaries.helm, node_cluster.plane.kubeconfig)
    left = [f"{kind} {name}" for api, kind, ns, name in CHART_OBJECTS if client.get(api, kind, name, ns) is not None]
    assert left == []
    # The webhook's certificate Secret is the operator's, owned by the chart's Service: collected too.
    processes.wait_until(
        lambda: client.get("v1", "Secret", "wallet-operator-webhook-cert", chart.NAMESPACE) is None,
        60,
        "the webhook certificate Secret collected",
    )
    processes.wait_until(lambda: not operator_pods(client), 60, "operator pods gone")
