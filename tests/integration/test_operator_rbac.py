"""An operator told to watch some namespaces (the chart's ``namespaces`` value, WALLET_NAMESPACES)
runs with RBAC that stops at those namespaces: the platform rules are bound there by RoleBindings,
only the CRD read rule is cluster-wide. It reconciles a platform in its namespace, and it could not
touch one elsewhere if it tried (the API server refuses its ServiceAccount)."""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import Iterator

import pytest
from walletplatform import install
from walletplatform.clients import kube
from walletplatform.devenv import operator as operator_env
from walletplatform.devenv import processes

from tests.conftest import DEV_EXAMPLE
from tests.integration import platforms
from tests.integration.conftest import OPERATOR_ENV, Cluster

pytestmark = pytest.mark.integration
ACCOUNT = "wallet-operator-scoped"


@pytest.fixture
def scoped(cluster: Cluster, tmp_path: pathlib.Path) -> Iterator[tuple[str, str, kube.Kube, operator_env.Operator]]:
    suffix = uuid.uuid4().hex[:6]
    watched, other = f"watched-{suffix}", f"other-{suffix}"
    for name in (operator_env.NAMESPACE, watched, other):
        cluster.client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, "wallet-tests")
    rbac = install.render_rbac(operator_env.NAMESPACE, ACCOUNT, watched=(watched,))
    for obj in rbac:
        cluster.client.apply(obj, "wallet-tests")
    token = cluster.client.service_account_token(operator_env.NAMESPACE, ACCOUNT)
    kubeconfig = cluster.plane.write_kubeconfig(
        tmp_path / "kubeconfig", token, user=f"system:serviceaccount:{operator_env.NAMESPACE}:{ACCOUNT}"
    )
    env = {**OPERATOR_ENV, "WALLET_NAMESPACES": watched, "WALLET_LEASE_NAME": ACCOUNT}
    process = operator_env.Operator(kubeconfig, tmp_path, f"scoped-{suffix}", env).start()
    try:
        processes.wait_until(lambda: process.role() == "leader", 30, "the scoped operator leading")
        yield watched, other, kube.Kube(kubeconfig), process
    finally:
        process.stop()
        for obj in reversed(rbac):
            meta = obj["metadata"]
            assert isinstance(meta, dict)
            cluster.client.delete(str(obj["apiVersion"]), str(obj["kind"]), str(meta["name"]), meta.get("namespace"))  # type: ignore[arg-type]
        for name in (watched, other):
            cluster.client.delete("v1", "Namespace", name)


def test_a_namespaced_operator_reconciles_its_namespace_and_can_touch_no_other(
    cluster: Cluster, scoped: tuple[str, str, kube.Kube, operator_env.Operator]
) -> None:
    watched, other, as_operator, _ = scoped
    roles = {(o["kind"], o["metadata"].get("namespace")) for o in install.render_rbac("x", ACCOUNT, watched=(watched,))}
    assert ("ClusterRoleBinding", None) in roles and ("RoleBinding", watched) in roles
    bindings = [o for o in install.render_rbac("x", ACCOUNT, watched=(watched,)) if o["kind"] == "ClusterRoleBinding"]
    assert [b["roleRef"]["name"] for b in bindings] == [f"{ACCOUNT}-crds"]  # type: ignore[index]

    mine = platforms.platform_doc(DEV_EXAMPLE, watched)
    platforms.apply_platform(cluster.client, mine)
    platforms.wait_condition(cluster.client, watched, mine["metadata"]["name"], "Reconciled", "True", timeout=60)
    assert cluster.client.get("apps/v1", "Deployment", f"{mine['metadata']['name']}-user", watched) is not None

    # Elsewhere its ServiceAccount may not even read, let alone write.
    for attempt in (
        lambda: as_operator.list("apps/v1", "Deployment", other),
        lambda: as_operator.list(platforms.API, "WalletPlatform", other),
        lambda: as_operator.apply(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": other}}, "wallet-operator"
        ),
    ):
        with pytest.raises(kube.ApiError) as refused:
            attempt()
        assert refused.value.status == 403
