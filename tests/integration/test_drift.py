"""Drift is repaired from the watches, not by the resync: the operator runs with a resync period of an
hour, far longer than any wait here, and a child deleted or edited by hand is back within seconds
(the times are printed)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from walletplatform import catalog
from walletplatform.devenv import operator as operator_env
from walletplatform.devenv import processes

from tests.conftest import DEV_EXAMPLE
from tests.integration import platforms
from tests.integration.conftest import OPERATOR_ENV, Cluster, running_operator
from tests.integration.test_operator import converge

pytestmark = pytest.mark.integration
HOUR = 3600
WAIT = 30  # far below the resync period: only the watches can repair within it


@pytest.fixture(scope="module")
def slow_resync_operator(
    operator_kubeconfig: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[operator_env.Operator]:
    yield from running_operator(
        operator_kubeconfig, tmp_path_factory, OPERATOR_ENV | {"WALLET_RESYNC_SECONDS": str(HOUR)}
    )


def test_a_deleted_deployment_and_an_edited_hpa_are_repaired_without_a_resync(
    cluster: Cluster, namespace: str, slow_resync_operator: operator_env.Operator, cat: catalog.Catalog
) -> None:
    doc = platforms.platform_doc(DEV_EXAMPLE, namespace)
    name = doc["metadata"]["name"]
    converge(cluster, namespace, doc, cat)
    target = f"{name}-{doc['spec']['services'][0]['name']}"
    original = cluster.client.get("apps/v1", "Deployment", target, namespace)
    hpa = cluster.client.get("autoscaling/v2", "HorizontalPodAutoscaler", target, namespace)
    assert original is not None and hpa is not None
    maximum = hpa["spec"]["maxReplicas"]

    deleted = time.monotonic()
    cluster.client.delete("apps/v1", "Deployment", target, namespace)
    processes.wait_until(
        lambda: (
            (cluster.client.get("apps/v1", "Deployment", target, namespace) or {}).get("metadata", {}).get("uid")
            not in (None, original["metadata"]["uid"])
        ),
        WAIT,
        "the deleted Deployment recreated from the watch",
        interval=0.1,
    )
    recreated = time.monotonic() - deleted

    def edit(obj: dict[str, Any]) -> None:
        obj["spec"]["maxReplicas"] = maximum + 7

    edited = time.monotonic()
    platforms.hand_edit(cluster.client, "autoscaling/v2", "HorizontalPodAutoscaler", target, namespace, edit)
    processes.wait_until(
        lambda: (
            (cluster.client.get("autoscaling/v2", "HorizontalPodAutoscaler", target, namespace) or {})["spec"][
                "maxReplicas"
            ]
            == maximum
        ),
        WAIT,
        "the hand-edited maxReplicas restored from the watch",
        interval=0.1,
    )
    restored = time.monotonic() - edited
    print(f"\ndeleted Deployment back in {recreated:.2f}s, edited HPA maxReplicas restored in {restored:.2f}s")
    metrics = slow_resync_operator.metrics()
    assert 'wallet_operator_reconcile_duration_seconds_count{trigger="resync"}' not in metrics
    assert 'wallet_operator_reconcile_duration_seconds_count{trigger="drift"}' in metrics
