"""Pre-scaling on real pods: the predictive floor has the pods Running and Ready before the load comes.

Prometheus on the node address is backfilled with two weeks of api-gateway demand that steps every day
from 2 to 30 requests/s at one time of day, shifted so that today's step is minutes away. Two copies
of the dev platform run side by side with the operator in-cluster (its Helm chart, its image): one
under a ScalingPolicy in Auto, one under the same policy in ForecastOnly. At the step, real load
(CPU-bound requests) is driven at both api-gateways. Auto: the HPA's minReplicas rises first and the
third pod is Ready before the load arrives (the lead is printed). ForecastOnly: the same floor is
forecast and explained, nothing is applied, and pods arrive only after the load, when the HPA reacts
to CPU. Both timelines are printed (the README reports them)."""

from __future__ import annotations

import contextlib
import pathlib
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from walletplatform import API_GROUP, API_VERSION
from walletplatform.clients import kube
from walletplatform.devenv import chart, cluster, hostnet, processes, prometheus
from walletplatform.forecast import series

from tests.conftest import ROOT
from tests.integration import platforms

pytestmark = pytest.mark.integration
MODES = {"wallet-prescale-auto": "Auto", "wallet-prescale-forecast": "ForecastOnly"}
LOW, HIGH = 2.0, 30.0  # requests/s before and during the daily step
STEP_MINUTES = 60
CAPACITY = 10.0  # per replica at 100%: the step needs 3 api-gateways, the quiet hours 1
LEAD, STARTUP = 120, 60  # seconds: the floor covers the next 3 minutes
# Seconds from applying the policies to today's step: long enough that the floor rises when the forecast
# says so (about 10 minutes ahead: the profile reads same-time samples +-15 minutes), not at the first decision.
STEP_AFTER = 900.0
GATEWAY = "wallet-dev-api-gateway"


def step_traffic(step_at: float, days: int = 15) -> series.Series:
    """Per-minute demand ending now: LOW, and HIGH for an hour from ``step_at``'s time of day, every day."""
    end = step_at - STEP_AFTER
    start = end - days * series.DAY
    times = start + 60 * np.arange(int(days * 1440))
    since_step = (times - step_at) % series.DAY
    return series.Series(float(times[0]), 60.0, np.where(since_step < STEP_MINUTES * 60, HIGH, LOW))


def policy(namespace: str, mode: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "ScalingPolicy",
        "metadata": {"name": "gateway-step", "namespace": namespace},
        "spec": {
            "platformRef": "wallet-dev",
            "services": ["api-gateway"],
            "mode": mode,
            "interval": "10s",
            "predictive": {
                "query": f'sum(rate(http_requests_total{{namespace="{namespace}"}}[5m]))',
                "capacityPerReplica": CAPACITY,
                "targetUtilization": 1,
                "headroom": 0,
                "lookback": "14d",
                "leadTime": f"{LEAD}s",
                "startup": f"{STARTUP}s",
                "refresh": "1m",
                "minHistory": "7d",
            },
        },
    }


@pytest.fixture(scope="module")
def setup(node_cluster: cluster.LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    client, plane = node_cluster.client, node_cluster.plane
    assert client is not None and plane is not None
    chart.install(node_cluster.binaries.helm, plane.kubeconfig, {"resyncSeconds": 5})
    server = prometheus.Prometheus(pathlib.Path(tmp_path_factory.mktemp("prometheus")), address=hostnet.NODE_IP)
    try:
        for namespace in MODES:
            client.apply(
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": namespace, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
                },
                "wallet-tests",
            )
            doc = platforms.platform_doc(ROOT / "examples" / "walletplatform.yaml", namespace)
            doc["spec"]["monitoring"] = {"prometheusUrl": server.url, "serviceMonitor": False, "prometheusRule": False}
            gateway = doc["spec"]["services"][0]
            assert gateway["name"] == "api-gateway"
            gateway["maxReplicas"] = 3
            platforms.apply_platform(client, doc)
        processes.wait_until(
            lambda: all(gateway_state(client, ns)[0] == 1 for ns in MODES), 240, "both api-gateways Ready"
        )
        step_at = time.time() + STEP_AFTER
        traffic = step_traffic(step_at)
        for namespace in MODES:
            server.backfill(prometheus.openmetrics(traffic, {"namespace": namespace, "service": GATEWAY}))
        server.start()
        for namespace, mode in MODES.items():
            client.apply(policy(namespace, mode), "wallet-tests")
        yield {"client": client, "step_at": step_at}
    finally:
        server.stop()
        for namespace in MODES:
            client.delete("v1", "Namespace", namespace)


def gateway_state(client: kube.Kube, namespace: str) -> tuple[int, int]:
    """(api-gateway pods Ready, the HPA's minReplicas)."""
    pods = client.list("v1", "Pod", namespace, selector="app.kubernetes.io/name=api-gateway")
    ready = sum(
        1
        for pod in pods
        if any(
            c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions") or []
        )
    )
    hpa = client.get("autoscaling/v2", "HorizontalPodAutoscaler", GATEWAY, namespace) or {}
    return ready, int((hpa.get("spec") or {}).get("minReplicas") or 0)


def drive_load(client: kube.Kube, namespace: str, stop: threading.Event, workers: int = 3) -> list[threading.Thread]:
    service = client.get("v1", "Service", GATEWAY, namespace)
    assert service is not None
    url = f"http://{service['spec']['clusterIP']}:8080/v1/work"

    def load() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                urllib.request.urlopen(url, timeout=5).read()

    threads = [threading.Thread(target=load, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    return threads


@pytest.mark.timeout(STEP_AFTER + 900)  # it waits for the step: longer than the suite's per-test limit
def test_the_predictive_floor_has_pods_ready_before_the_load_and_forecast_only_does_not(
    setup: dict[str, Any],
) -> None:
    client, step_at = setup["client"], setup["step_at"]
    timeline: dict[str, list[tuple[float, int, int]]] = {ns: [] for ns in MODES}

    def sample() -> None:
        for namespace in MODES:
            ready, floor = gateway_state(client, namespace)
            timeline[namespace].append((time.time() - step_at, ready, floor))

    while time.time() < step_at:
        sample()
        time.sleep(2)
    stop = threading.Event()
    threads = [t for ns in MODES for t in drive_load(client, ns, stop)]
    try:
        processes.wait_until(
            lambda: (sample(), timeline["wallet-prescale-forecast"][-1][1] >= 2)[1],
            300,
            "the ForecastOnly api-gateway scaled by the HPA under load",
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)

    def first(namespace: str, test: Any) -> float | None:
        return next((at for at, ready, floor in timeline[namespace] if test(ready, floor)), None)

    auto, forecast = "wallet-prescale-auto", "wallet-prescale-forecast"
    floor_raised = first(auto, lambda ready, floor: floor >= 3)
    three_ready = first(auto, lambda ready, floor: ready >= 3)
    forecast_scaled = first(forecast, lambda ready, floor: ready >= 2)
    forecast_floor = max(floor for _, _, floor in timeline[forecast])
    changes = {
        ns: [
            (round(at), ready, floor)
            for i, (at, ready, floor) in enumerate(seen)
            if i == 0 or seen[i - 1][1:] != (ready, floor)
        ]
        for ns, seen in timeline.items()
    }
    print(f"\nchanges (seconds from the load, ready pods, minReplicas): {changes}")
    assert floor_raised is not None and three_ready is not None and forecast_scaled is not None, timeline
    print(
        f"Auto: minReplicas 3 at {floor_raised:+.0f}s, three pods Ready at {three_ready:+.0f}s, so"
        f" {-three_ready:.0f}s before the load; ForecastOnly: minReplicas never above {forecast_floor},"
        f" a second pod Ready at {forecast_scaled:+.0f}s (after the load, by the HPA)"
    )
    assert timeline[auto][0][2] == 1  # the policy did not raise the floor at once: the forecast did, later
    assert floor_raised <= three_ready < 0 < forecast_scaled
    assert forecast_floor == 1
    at_step = [ready for at, ready, _ in timeline[forecast] if at < 0]
    assert at_step and at_step[-1] == 1  # one pod when the load came: nothing was pre-scaled
    body = client.get(f"{API_GROUP}/{API_VERSION}", "ScalingPolicy", "gateway-step", forecast) or {}
    (status,) = (body.get("status") or {}).get("services") or [{}]
    assert status.get("floor") == 3 and status.get("predictiveApplied"), status  # forecast and explained
    assert any("forecast only" in reason for reason in status["reasons"])
