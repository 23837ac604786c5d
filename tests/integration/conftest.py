"""Fixtures for integration tests: a session-scoped real control plane with every CRD installed, a
namespace per test, and a real Prometheus. Component logs are printed when a test fails. Nothing is
skipped: a test whose real server cannot run here fails and says why."""

from __future__ import annotations

import os
import pathlib
import uuid
from collections.abc import Iterator

import pytest
from walletplatform.clients import kube
from walletplatform.devenv import cluster as local_cluster
from walletplatform.devenv import controlplane, crds, processes, toolchain
from walletplatform.devenv import operator as operator_env

pytestmark = pytest.mark.integration


class Cluster:
    def __init__(self, plane: controlplane.ControlPlane) -> None:
        self.kubeconfig = plane.kubeconfig
        self.plane = plane
        self.client = kube.Kube(plane.kubeconfig)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    plane = controlplane.ControlPlane(tmp_path_factory.mktemp("controlplane"), toolchain.ensure_binaries())
    try:
        plane.start()
        result = Cluster(plane)
        crds.install(result.client)
        yield result
    finally:
        plane.stop()


# Short periods so the tests see resync, retries and fail-over in seconds (production defaults: 60 s,
# 20 s, 15 s).
OPERATOR_ENV = {"WALLET_RESYNC_SECONDS": "3", "WALLET_DEPENDENCY_RETRY_SECONDS": "3", "WALLET_LEASE_SECONDS": "4"}
OPERATOR_USER = f"system:serviceaccount:{operator_env.NAMESPACE}:{operator_env.ACCOUNT}"


@pytest.fixture(scope="session")
def operator_kubeconfig(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """Credentials of the chart's ServiceAccount, with exactly the chart's RBAC: never admin."""
    operator_env.install_rbac(cluster.client)
    return operator_env.operator_kubeconfig(cluster.client, cluster.plane, tmp_path_factory.mktemp("op") / "kubeconfig")


@pytest.fixture(scope="module")
def operator(
    operator_kubeconfig: pathlib.Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[operator_env.Operator]:
    """One operator process (leader) for a test module."""
    yield from running_operator(operator_kubeconfig, tmp_path_factory, OPERATOR_ENV)


def running_operator(
    kubeconfig: pathlib.Path, tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]
) -> Iterator[operator_env.Operator]:
    """An operator process with ``env``, leading until the caller is done with it."""
    process = operator_env.Operator(
        kubeconfig, tmp_path_factory.mktemp("operator"), f"op-{uuid.uuid4().hex[:6]}", env
    ).start()
    processes_wait_leader(process)
    yield process
    process.stop()


def processes_wait_leader(process: operator_env.Operator, timeout: float = 30) -> None:
    processes.wait_until(lambda: process.role() == "leader", timeout, f"operator {process.identity} leading")


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    cluster.client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, "wallet-tests")
    yield name
    cluster.client.delete("v1", "Namespace", name)


def require_root() -> None:
    """A local node changes the host's network, mounts and containerd: without root, fail saying so."""
    if os.geteuid() != 0:
        pytest.fail("a local node needs root (network, mounts, containerd): run the tests as root", pytrace=False)


@pytest.fixture
def root() -> None:
    """For tests that start a local node themselves (``pytest.mark.usefixtures("root")``)."""
    require_root()


def _local_cluster(
    tmp_path_factory: pytest.TempPathFactory, name: str, *, data_operators: bool
) -> Iterator[local_cluster.LocalCluster]:
    require_root()
    running = local_cluster.LocalCluster(tmp_path_factory.mktemp(name))
    try:
        running.start(print, data_operators=data_operators)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local_cluster.LocalCluster]:
    """A local cluster with a real node for one test module (one node per machine: modules take turns)."""
    yield from _local_cluster(tmp_path_factory, "node-cluster", data_operators=False)


@pytest.fixture(scope="module")
def data_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local_cluster.LocalCluster]:
    """A local cluster with a real node and the data tier's operators (CloudNativePG, redis-operator)."""
    yield from _local_cluster(tmp_path_factory, "data-cluster", data_operators=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    funcargs = getattr(item, "funcargs", {})
    if report.failed and "cluster" in funcargs:
        report.sections.append(("control plane logs", funcargs["cluster"].plane.logs_tail()))
    for name in ("node_cluster", "data_cluster"):
        if report.failed and name in funcargs:
            report.sections.append(("local cluster logs", funcargs[name].logs_tail()))
    if report.failed and "operator" in funcargs:
        report.sections.append(("operator log", funcargs["operator"].process.tail(60)))
