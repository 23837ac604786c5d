"""Acceptance of the renderer and the CRDs against the real kube-apiserver and
kube-controller-manager (built from source by hack/toolchain.sh)."""

from __future__ import annotations

import copy
import pathlib
import threading

import pytest
from walletplatform import catalog, render
from walletplatform.clients import kube
from walletplatform.devenv import processes
from walletplatform.models import common

from tests.conftest import EXAMPLES, INVALID, POLICIES, load, rejected_by, resolve_file
from tests.integration.conftest import Cluster

pytestmark = pytest.mark.integration


def in_namespace(obj: common.Manifest, namespace: str) -> common.Manifest:
    result = copy.deepcopy(obj)
    result["metadata"]["namespace"] = namespace  # type: ignore[index,call-overload]
    return result


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_rendered_object_passes_server_side_dry_run(
    path: pathlib.Path, cluster: Cluster, namespace: str, cat: catalog.Catalog
) -> None:
    objects = render.render_platform(resolve_file(path, cat))
    errors = []
    for obj in objects:
        try:
            cluster.client.apply(in_namespace(obj, namespace), "wallet-tests", dry_run=True)
        except kube.ApiError as exc:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc}")  # type: ignore[index,call-overload]
    assert errors == []
    assert len(objects) >= 47


@pytest.mark.parametrize("path", EXAMPLES + POLICIES, ids=lambda p: p.name)
def test_generated_crds_accept_examples(path: pathlib.Path, cluster: Cluster, namespace: str) -> None:
    doc = in_namespace(load(path), namespace)  # type: ignore[arg-type]
    created = cluster.client.apply(doc, "wallet-tests")
    assert created["spec"]


API_REJECTED = [p for p in INVALID if rejected_by(p) in ("schema", "cel")]


@pytest.mark.parametrize("path", API_REJECTED, ids=lambda p: p.stem)
def test_generated_crds_reject_invalid_with_field_path(path: pathlib.Path, cluster: Cluster, namespace: str) -> None:
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    doc = in_namespace(load(path), namespace)  # type: ignore[arg-type]
    with pytest.raises(kube.ApiError) as caught:
        cluster.client.create(doc)  # as kubectl create does: strict field validation
    assert caught.value.status in (400, 422)  # 400: unknown field (strict decoding), 422: schema or CEL
    assert expected in caught.value.message, caught.value.message


def test_service_pods_are_admitted_as_restricted(cluster: Cluster, namespace: str, cat: catalog.Catalog) -> None:
    cluster.client.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": namespace,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "v1.34",
                },
            },
        },
        "wallet-tests",
    )
    objects = render.render_platform(resolve_file(EXAMPLES[0], cat))
    for account in (o for o in objects if o["kind"] == "ServiceAccount"):
        cluster.client.apply(in_namespace(account, namespace), "wallet-tests")
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    for dep in deployments:
        template = dep["spec"]["template"]  # type: ignore[index,call-overload]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": dep["metadata"]["name"], "namespace": namespace},  # type: ignore[index,call-overload]
            "spec": template["spec"],
        }
        cluster.client.create(pod, dry_run=True)
    bad = copy.deepcopy(pod)
    bad["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True  # type: ignore[index]
    with pytest.raises(kube.ApiError, match="allowPrivilegeEscalation"):
        cluster.client.create(bad, dry_run=True)  # the namespace really enforces restricted


def test_controller_manager_acts_on_deployments_and_hpas(
    cluster: Cluster, namespace: str, cat: catalog.Catalog
) -> None:
    objects = render.render_platform(resolve_file(EXAMPLES[0], cat))
    (dep,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "wallet-dev-user"]  # type: ignore[index,call-overload]
    (hpa,) = [
        o for o in objects if o["kind"] == "HorizontalPodAutoscaler" and o["metadata"]["name"] == "wallet-dev-user"
    ]  # type: ignore[index,call-overload]
    client = cluster.client
    client.apply(in_namespace(dep, namespace), "wallet-tests")

    def replica_sets() -> list[dict[str, object]]:
        return client.list("apps/v1", "ReplicaSet", namespace, selector="app.kubernetes.io/name=user")

    processes.wait_until(lambda: len(replica_sets()) == 1, 60, "a ReplicaSet for the Deployment", interval=0.5)
    client.apply(in_namespace(hpa, namespace), "wallet-tests")
    raised = hpa["spec"]["maxReplicas"]  # type: ignore[index]
    assert raised > hpa["spec"]["minReplicas"]  # type: ignore[index]
    floor = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "wallet-dev-user", "namespace": namespace},
        "spec": {"minReplicas": raised},
    }
    client.apply(floor, "wallet-scaler")

    def scaled() -> bool:
        live = client.get("apps/v1", "Deployment", "wallet-dev-user", namespace) or {}
        return bool(live.get("spec", {}).get("replicas") == raised)

    processes.wait_until(scaled, 90, f"the HPA controller scaling the Deployment to minReplicas {raised}", interval=0.5)
    live_hpa = client.get("autoscaling/v2", "HorizontalPodAutoscaler", "wallet-dev-user", namespace) or {}
    managers = {m["manager"] for m in live_hpa["metadata"]["managedFields"]}
    assert {"wallet-tests", "wallet-scaler"} <= managers


def test_discovery_is_safe_from_many_threads(cluster: Cluster) -> None:
    """``served()`` of a missing kind rebuilds the discovery cache; from several threads at once that
    raced (KeyError: 'resources', KeyError: 'apis') before lookups were serialised."""
    client = kube.Kube(cluster.kubeconfig)
    failures: list[BaseException] = []

    def hammer(i: int) -> None:
        try:
            for j in range(15):
                assert client.served("example.com/v1", f"Missing{i}x{j}") is False
                assert client.served("apps/v1", "Deployment") is True
        except BaseException as exc:  # any failure of any thread fails the test
            failures.append(exc)

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []
