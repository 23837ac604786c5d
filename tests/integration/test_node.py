"""Real pods on a real local node (containerd, kubelet, kube-proxy, kube-scheduler, CoreDNS), images
built locally from the project's Dockerfiles.

Faults and figures: a node process killed with SIGKILL leaves its host changes behind, a second
node is refused while one runs, the next start clears what the dead one left, and a stop leaves the
host exactly as it was (interfaces, routes, network namespaces, mounts, iptables, sysctls,
processes). The reference service runs under the ``restricted`` Pod Security Standard, resolves and
reaches other services by their Service names through kube-proxy."""

from __future__ import annotations

import json
import pathlib
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from walletplatform.clients import kube
from walletplatform.devenv import cluster, hostnet, images, processes

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("root")]

RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


@pytest.fixture(scope="module")
def baseline() -> dict[str, object]:
    assert hostnet.HostNetwork.leftover() is None, "a node of an earlier run is still recorded"
    return hostnet.host_state()


def _wait_line(proc: subprocess.Popen[str], text: str, timeout: float) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"no {text!r} within {timeout}s:\n" + "".join(seen[-40:]))


def test_a_second_node_is_refused_and_a_crashed_one_is_cleared(
    baseline: dict[str, object], tmp_path: pathlib.Path
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "walletplatform.cli.main", "cluster", "--workdir", str(tmp_path / "first")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_line(proc, "running until Ctrl-C", 900)
        second = subprocess.run(
            [sys.executable, "-m", "walletplatform.cli.main", "cluster", "--workdir", str(tmp_path / "second")],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert second.returncode == 1
        assert "a local node already runs on this machine" in second.stderr and "one node per machine" in second.stderr
    finally:
        proc.send_signal(signal.SIGKILL)  # a crash: no cleanup runs
        proc.wait(30)
    record = hostnet.HostNetwork.leftover()
    assert record is not None and record["pid"] == proc.pid
    left = hostnet.host_state()
    assert hostnet.INTERFACE in left["links"]  # type: ignore[operator]
    assert left["iptables"] != baseline["iptables"], "kube-proxy's rules should be left by a crash"
    # The next start detects the dead owner and clears its leftovers before it claims the host.
    hostnet.HostNetwork(tmp_path / "next").claim()
    hostnet.HostNetwork(tmp_path / "next").release()
    assert hostnet.host_state() == baseline


@pytest.fixture(scope="module")
def client(baseline: dict[str, object], node_cluster: cluster.LocalCluster) -> kube.Kube:
    assert node_cluster.client is not None
    return node_cluster.client


def restricted_namespace(client: kube.Kube, name: str) -> str:
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    client.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}, "wallet-tests"
    )
    processes.wait_until(lambda: client.get("v1", "ServiceAccount", "default", name), 30, f"{name}/default")
    return name


def service_pod(name: str, namespace: str, env: dict[str, str], **spec: Any) -> dict[str, Any]:
    container = {
        "name": "svc",
        "image": images.SERVICE,
        "imagePullPolicy": "IfNotPresent",
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1},
        "securityContext": RESTRICTED,
        "resources": {"requests": {"cpu": "20m", "memory": "64Mi"}, "limits": {"memory": "192Mi"}},
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {"containers": [container], "automountServiceAccountToken": False, **spec},
    }


def pod_ready(client: kube.Kube, namespace: str, name: str) -> bool:
    pod = client.get("v1", "Pod", name, namespace) or {}
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def http(method: str, url: str, body: object = None) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_restricted_pods_run_and_a_non_compliant_one_is_refused(client: kube.Kube) -> None:
    ns = restricted_namespace(client, "node-restricted")
    client.create(service_pod("gateway", ns, {"SERVICE_NAME": "api-gateway"}))
    processes.wait_until(lambda: pod_ready(client, ns, "gateway"), 120, "restricted pod Ready")
    bad = service_pod("escalating", ns, {"SERVICE_NAME": "user"})
    bad["spec"]["containers"][0]["securityContext"] = {**RESTRICTED, "allowPrivilegeEscalation": True}
    with pytest.raises(kube.ApiError) as refused:
        client.create(bad)
    assert refused.value.status == 403 and "violates PodSecurity" in str(refused.value)


def test_pods_resolve_and_reach_services_by_name(client: kube.Kube) -> None:
    ns = restricted_namespace(client, "node-network")
    client.create(service_pod("user", ns, {"SERVICE_NAME": "user"}))
    client.create(service_pod("gateway", ns, {"SERVICE_NAME": "api-gateway", "USER_URL": f"http://user.{ns}:8080"}))
    for name in ("user", "gateway"):
        client.apply(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 8080, "targetPort": "http"}]},
            },
            "wallet-tests",
        )
        processes.wait_until(lambda n=name: pod_ready(client, ns, n), 120, f"{name} Ready")  # type: ignore[misc]
    gateway = client.get("v1", "Service", "gateway", ns)
    assert gateway is not None
    url = f"http://{gateway['spec']['clusterIP']}:8080"
    # host -> gateway's ClusterIP (kube-proxy) -> user.<ns> (CoreDNS) -> user's ClusterIP -> user pod.
    found: dict[str, Any] = {}

    def through() -> bool:
        found["reply"] = http("POST", f"{url}/v1/users", {"name": "ada"})
        return found["reply"][0] != 503 or "unavailable" not in str(found["reply"][1])

    processes.wait_until(through, 30, f"gateway reaching user (last {found})")
    assert found["reply"] == (503, {"error": "no database configured (DB_HOST)", "via": "api-gateway"})
    assert http("GET", f"{url}/v1/upstreams") == (200, {"upstreams": {"user": 200}})


def test_a_name_outside_the_cluster_is_not_resolved(client: kube.Kube) -> None:
    ns = restricted_namespace(client, "node-dns")
    client.create(service_pod("gateway", ns, {"SERVICE_NAME": "api-gateway", "USER_URL": "http://example.com:8080"}))
    processes.wait_until(lambda: pod_ready(client, ns, "gateway"), 120, "gateway Ready")
    pod = client.get("v1", "Pod", "gateway", ns)
    assert pod is not None
    status, body = http("POST", f"http://{pod['status']['podIP']}:8080/v1/users", {"name": "ada"})
    assert status == 503 and "user unavailable" in body["error"], body


def test_stop_leaves_the_host_as_it_was(node_cluster: cluster.LocalCluster, baseline: dict[str, object]) -> None:
    node_cluster.stop()
    assert hostnet.host_state() == baseline
    assert hostnet.HostNetwork.leftover() is None
