"""Operator availability: two replicas with one leader and a bounded fail-over, a crash in the middle
of a reconcile, a kube-apiserver restart under a running operator, kube-apiserver down for 20 and 45 s
under two replicas (never two leaders, no loop dies), and SIGTERM of the leader (it exits, releases
the lease, the standby leads at once). Each test runs its own
operator processes (the module-scoped one of test_operator.py has released the lease by now)."""

from __future__ import annotations

import pathlib
import signal
import threading
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
    applied = time.monotonic()
    platforms.apply_platform(cluster.client, doc)
    wait_keys(cluster, namespace, doc["metadata"]["name"], rendered_keys(doc, cat))
    print(
        f"\nSIGKILL of the leader: the standby led {took:.1f}s later; "
        f"a platform applied then converged in {time.monotonic() - applied:.1f}s"
    )


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
        leading = time.monotonic()
        name = doc["metadata"]["name"]
        wait_keys(cluster, namespace, name, rendered_keys(doc, cat))
        objects = platforms.children(cluster.client, namespace, name, render.KINDS)
        assert len(objects) == len({compare.object_key(o) for o in objects})
        print(
            f"\nSIGKILL mid-reconcile: the next operator completed the platform {time.monotonic() - leading:.1f}s "
            f"after it led, {len(objects)} children, no duplicates"
        )
    finally:
        second.stop()


def test_the_operator_recovers_by_itself_after_an_apiserver_restart(
    cluster: Cluster, namespace: str, start_operator: Any, cat: catalog.Catalog
) -> None:
    op = start_operator("restart-a")
    processes_wait_leader(op, timeout=WAIT)
    cluster.plane.restart_apiserver()
    doc = platforms.platform_doc(DEV_EXAMPLE, namespace)
    platforms.apply_platform(cluster.client, doc)
    wait_keys(cluster, namespace, doc["metadata"]["name"], rendered_keys(doc, cat))
    assert op.process.running and op.role() == "leader"


class RoleSampler:
    """Both replicas' liveness answers every 0.2 s: proves there is never a moment with two leaders."""

    def __init__(self, replicas: list[operator_env.Operator]) -> None:
        self.replicas = replicas
        self.samples: list[tuple[float, tuple[str, ...]]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _role(self, replica: operator_env.Operator) -> str:
        try:
            return replica.role() if replica.process.running else "exited"
        except OSError:
            return "unreachable"

    def _run(self) -> None:
        while not self.stop.wait(0.2):
            self.samples.append((time.monotonic(), tuple(self._role(r) for r in self.replicas)))

    def finish(self) -> list[tuple[float, tuple[str, ...]]]:
        self.stop.set()
        self.thread.join(5)
        return self.samples


def _counter(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


@pytest.mark.parametrize("outage_seconds", [20, 45], ids=["20s", "45s"])
def test_an_apiserver_outage_kills_no_loop_and_never_makes_two_leaders(
    cluster: Cluster, namespace: str, start_operator: Any, cat: catalog.Catalog, outage_seconds: int
) -> None:
    assert cluster.plane.apiserver is not None
    first = start_operator(f"outage-a-{outage_seconds}")
    processes_wait_leader(first, timeout=WAIT)
    second = start_operator(f"outage-b-{outage_seconds}")
    sampler = RoleSampler([first, second])
    cluster.plane.apiserver.stop()
    time.sleep(outage_seconds)
    cluster.plane.start_apiserver()
    back = time.monotonic()
    processes.wait_until(lambda: "leader" in {first.role(), second.role()}, WAIT, "a leader after the outage")
    print(f"\noutage {outage_seconds}s: a single leader {time.monotonic() - back:.1f}s after kube-apiserver came back")
    leader = first if first.role() == "leader" else second
    before = _counter(leader.metrics(), 'wallet_operator_loop_iterations_total{loop="resync"}')
    doc = platforms.platform_doc(DEV_EXAMPLE, namespace)
    applied = time.monotonic()
    platforms.apply_platform(cluster.client, doc)
    wait_keys(cluster, namespace, doc["metadata"]["name"], rendered_keys(doc, cat))
    print(f"outage {outage_seconds}s: a platform applied after it converged in {time.monotonic() - applied:.1f}s")
    # The resync loop goes on after the outage (it used to die on the first non-API error).
    processes.wait_until(
        lambda: _counter(leader.metrics(), 'wallet_operator_loop_iterations_total{loop="resync"}') >= before + 2,
        10 * float(OPERATOR_ENV["WALLET_RESYNC_SECONDS"]),
        "resync iterations after the outage",
    )
    samples = sampler.finish()
    both = [t for t, roles in samples if roles.count("leader") > 1]
    assert both == [], f"two leaders at {len(both)} samples"
    assert first.process.running and second.process.running
    assert {first.role(), second.role()} == {"leader", "standby"}
    assert (
        _counter(leader.metrics(), "wallet_operator_lease_errors_total")
        + _counter((second if leader is first else first).metrics(), "wallet_operator_lease_errors_total")
        > 0
    )


def test_sigterm_ends_the_leader_releases_the_lease_and_the_standby_leads_at_once(start_operator: Any) -> None:
    first = start_operator("term-a")
    processes_wait_leader(first, timeout=WAIT)
    second = start_operator("term-b")
    time.sleep(1)
    assert second.role() == "standby"
    assert first.process.popen is not None
    first.process.popen.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    code = first.process.popen.wait(30)  # the chart's terminationGracePeriodSeconds
    exited = time.monotonic() - sent
    processes_wait_leader(second, timeout=WAIT)
    took = time.monotonic() - sent
    print(f"\nSIGTERM: leader exited {exited:.1f}s later (status {code}); the standby led {took:.1f}s after the signal")
    assert code == 0
    assert "released the leader lease" in first.logs()
    # Released, not expired: the standby leads within its retry period, before a lease could expire.
    assert took < float(OPERATOR_ENV["WALLET_LEASE_SECONDS"]) + exited, took
