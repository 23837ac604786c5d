"""Fixtures for integration tests: a session-scoped real control plane with every CRD installed, a
namespace per test, and a real Prometheus. Component logs are printed when a test fails.

Set WALLET_KIND_CLUSTER=1 on a machine with Docker to run the same tests on a kind cluster through
pytest-kind instead of the local control plane."""

from __future__ import annotations

import os
import pathlib
import uuid
from collections.abc import Iterator

import pytest
from walletplatform.clients import kube
from walletplatform.devenv import controlplane, crds, toolchain

pytestmark = pytest.mark.integration


class Cluster:
    def __init__(self, kubeconfig: pathlib.Path, plane: controlplane.ControlPlane | None) -> None:
        self.kubeconfig = kubeconfig
        self.plane = plane
        self.client = kube.Kube(kubeconfig)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if os.environ.get("WALLET_KIND_CLUSTER"):
        kind = pytest.importorskip("pytest_kind", reason="WALLET_KIND_CLUSTER needs pytest-kind and Docker")
        kind_cluster = kind.KindCluster("wallet-tests")
        kind_cluster.create()
        try:
            result = Cluster(pathlib.Path(kind_cluster.kubeconfig_path), None)
            crds.install(result.client)
            yield result
        finally:
            kind_cluster.delete()
        return
    plane = controlplane.ControlPlane(tmp_path_factory.mktemp("controlplane"), toolchain.ensure_binaries())
    try:
        plane.start()
        result = Cluster(plane.kubeconfig, plane)
        crds.install(result.client)
        yield result
    finally:
        plane.stop()


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    cluster.client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, "wallet-tests")
    yield name
    cluster.client.delete("v1", "Namespace", name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and "cluster" in getattr(item, "funcargs", {}):
        plane = item.funcargs["cluster"].plane  # type: ignore[attr-defined]
        if plane is not None:
            report.sections.append(("control plane logs", plane.logs_tail()))
