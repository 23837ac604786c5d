"""Operator availability: two replicas with one leader and a bounded fail-over, a crash in the middle
of a reconcile, and a kube-apiserver restart under a running operator. Each test runs its own
operator processes (the module-scoped one of test_operator.py has released the lease by now)."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
from walletplatform import catalog, render
from walletplatform.devenv import operator as operator_env
from walletplatform.devenv import processes
from walletplatform.reconcile import compare

from tests.conftest import DEV_EXAMPLE
from tests.integration import platforms
from tests.integration.conftest import OPERATOR_ENV, Cluster, processes_wait_leader
from tests.integration.test_operator import WAIT, live_keys, rendered_keys, wait_keys

pytestmark = pytest.mark.integration


@pytest.fixture
def start_operator(operator_kubeconfig: pathlib.Path, tmp_path: pathlib.Path) -> Iterator[Any]:
    started: list[operator_env.Operator] = []

    def start(identity: str) -> operator_env.Operator:
        process = operator_env.Operator(operator_kubeconfig, tmp_path, identity, OPERATOR_ENV).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def test_two_replicas_one_leader_and_fail_over_within_the_lease(
    cluster: Cluster, namespace: str, start_operator: Any, cat: catalog.Catalog
) -> None:
    first = start_operator("ha-a")
    processes_wait_leader(first)
    second = start_operator("ha-b")
    time.sleep(2 * float(OPERATOR_ENV["WALLET_LEASE_SECONDS"]))
    assert (first.role(), second.role()) == ("leader", "standby")
    assert "wallet_operator_leader 0.0" in second.metrics()

    first.kill()
    killed = time.monotonic()
    processes_wait_leader(second, timeout=WAIT)
    took = time.monotonic() - killed
    # lease duration + one retry period + start-up: bounded, and well under a minute
    assert took < 3 * float(OPERATOR_ENV["WALLET_LEASE_SECONDS"]) + 10, took
    doc = platforms.platform_doc(DEV_EXAMPLE, namespace)
    platforms.apply_platform(cluster.client, doc)
    wait_keys(cluster, namespace, doc["metadata"]["name"], rendered_keys(doc, cat))


def test_killed_mid_reconcile_the_next_operator_converges_without_duplicates(
    cluster: Cluster,
    namespace: str,
    start_operator: Any,
    cat: catalog.Catalog,
) -> None:
    first = start_operator("crash-a")
    try:
        processes_wait_leader(first, timeout=WAIT)
        doc = platforms.platform_doc(DEV_EXAMPLE, namespace)
        platforms.apply_platform(cluster.client, doc)
        processes.wait_until(lambda: live_keys(cluster, namespace, doc["metadata"]["name"]), WAIT, "first child")
        first.kill()
    finally:
        first.stop()
    second = start_operator("crash-b")
    try:
        processes_wait_leader(second, timeout=WAIT)
        name = doc["metadata"]["name"]
        wait_keys(cluster, namespace, name, rendered_keys(doc, cat))
        objects = platforms.children(cluster.client, namespace, name, render.KINDS)
        assert len(objects) == len({compare.object_key(o) for o in objects})
    finally:
        second.stop()


def test_the_operator_recovers_by_itself_after_an_apiserver_restart(
    cluster: Cluster, namespace: str, start_operator: Any, cat: catalog.Catalog
) -> None:
    assert cluster.plane is not None
    op = start_operator("restart-a")
    processes_wait_leader(op, timeout=WAIT)
    cluster.plane.restart_apiserver()
    doc = platforms.platform_doc(DEV_EXAMPLE, namespace)
    platforms.apply_platform(cluster.client, doc)
    wait_keys(cluster, namespace, doc["metadata"]["name"], rendered_keys(doc, cat))
    assert op.process.running and op.role() == "leader"
