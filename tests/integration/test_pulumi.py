"""The real Pulumi engine against a real control plane: the CLI and the Kubernetes provider built from
their Go module sources by hack/toolchain.sh, a local file backend, the committed stack configs.

- dev (direct): ``up`` creates every rendered object; a second ``up`` changes nothing; after the
  scaling engine raised an HPA's minReplicas, ``preview`` still changes nothing and ``up`` leaves the
  floor where the engine put it; ``destroy`` removes every object.
- the policy pack blocks a stack that breaks a rule, and a bad config fails ``preview`` with the
  field path, both before anything is created.
- staging (operator): ``up`` installs the chart (CRDs, RBAC, Deployment), the WalletPlatform and the
  ScalingPolicies of policies/staging; the operator, run with the chart's ServiceAccount, reconciles.

This module runs its own control plane: the operator chart's cluster-scoped RBAC must not collide
with the one the operator tests install. Readiness awaits are off (``awaitReadiness: false``): no
kubelet runs pods here, so Deployments never become available."""

from __future__ import annotations

import json
import pathlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from pulumi import automation as auto
from walletplatform import catalog
from walletplatform.clients import kube
from walletplatform.controller import settings
from walletplatform.devenv import controlplane, crds, processes, pulumi_engine, toolchain
from walletplatform.devenv import operator as operator_env
from walletplatform.render import autoscaling
from walletplatform.stacks import components, config, program

from tests.integration import platforms
from tests.integration.conftest import OPERATOR_ENV

pytestmark = pytest.mark.integration
STACKS = pulumi_engine.ROOT / "stacks" / "config"
PACK = pulumi_engine.ROOT / "policies" / "pack"


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[controlplane.ControlPlane]:
    plane = controlplane.ControlPlane(tmp_path_factory.mktemp("pulumi-plane"), toolchain.ensure_binaries())
    try:
        plane.start()
        crds.install(kube.Kube(plane.kubeconfig))
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="module")
def client(plane: controlplane.ControlPlane) -> kube.Kube:
    return kube.Kube(plane.kubeconfig)


@pytest.fixture(scope="module")
def engine(plane: controlplane.ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> pulumi_engine.Engine:
    return pulumi_engine.Engine(tmp_path_factory.mktemp("pulumi"), plane.kubeconfig, toolchain.ensure_binaries())


def committed(env: str) -> dict[str, Any]:
    """The config of the committed stack settings stacks/config/Pulumi.<env>.yaml."""
    values: dict[str, Any] = yaml.safe_load((STACKS / f"Pulumi.{env}.yaml").read_text())["config"]
    return values


def open_stack(engine: pulumi_engine.Engine, env: str, edit: dict[str, Any] | None = None) -> auto.Stack:
    """The stack ``env`` from its committed config (copied), readiness awaits off, ``edit`` merged into
    the config."""
    values = {**committed(env), "wallet-platform:awaitReadiness": "false", **(edit or {})}
    path = engine.home / f"Pulumi.{env}-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump({"config": values}))
    return engine.stack(f"{env}-{uuid.uuid4().hex[:6]}", path, program.run)


def rendered(env: str) -> list[dict[str, Any]]:
    """What exists once the stack is up: the stack's objects (direct mode) or the operator's render
    plus the stack's namespace default deny (operator mode): the same list either way."""
    data = committed(env)
    stack = config.parse_stack_config(
        {"mode": data["wallet-platform:mode"], "platform": data["wallet-platform:platform"]}, catalog.load_catalog()
    )
    return components.platform_objects(stack.resolved)


def live(client: kube.Kube, obj: dict[str, Any]) -> dict[str, Any] | None:
    meta = obj["metadata"]
    return client.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))


def changes(result: auto.UpResult | auto.PreviewResult | auto.DestroyResult) -> dict[str, int]:
    summary = result.change_summary if isinstance(result, auto.PreviewResult) else result.summary.resource_changes
    return {op: count for op, count in (summary or {}).items() if count}


def test_dev_stack_up_twice_respects_the_engine_floor_and_destroys(
    engine: pulumi_engine.Engine, client: kube.Kube
) -> None:
    objects = rendered("dev")
    stack = open_stack(engine, "dev")
    started = time.monotonic()
    up = stack.up()
    print(f"pulumi up (dev, direct): {time.monotonic() - started:.1f}s for {len(objects)} objects")
    # the stack, the component, the namespace and one resource per rendered object
    assert changes(up) == {"create": len(objects) + 3}
    missing = [f"{o['kind']}/{o['metadata']['name']}" for o in objects if live(client, o) is None]
    assert missing == []
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    pulumi_fields = [
        entry.get("fieldsV1", {}).get("f:spec", {})
        for d in deployments
        for entry in live(client, d)["metadata"]["managedFields"]  # type: ignore[index]
        if entry["manager"].startswith("pulumi")
    ]
    # the API server defaults spec.replicas; the stack never sets it (the HPA owns it)
    assert len(pulumi_fields) == len(deployments) and all("f:replicas" not in spec for spec in pulumi_fields)
    assert up.outputs["postgres"].value == {
        "rw": "wallet-dev-pg-rw",
        "ro": "wallet-dev-pg-ro",
        "pooler": "wallet-dev-pg-pooler-rw",
    }
    services = committed("dev")["wallet-platform:platform"]["spec"]["services"]
    assert set(up.outputs["services"].value) == {s["name"] for s in services}

    assert changes(stack.up()) == {"same": len(objects) + 3}

    hpa = next(o for o in objects if o["kind"] == "HorizontalPodAutoscaler")
    name, namespace = hpa["metadata"]["name"], hpa["metadata"]["namespace"]
    raised = hpa["spec"]["maxReplicas"]  # a floor the API server admits (minReplicas <= maxReplicas)
    assert raised > hpa["spec"]["minReplicas"]
    client.apply(
        autoscaling.render_floor(name, namespace, raised), settings.SCALER_MANAGER
    )  # acting as the scaling engine
    assert changes(stack.preview()) == {"same": len(objects) + 3}
    assert changes(stack.up()) == {"same": len(objects) + 3}
    assert live(client, hpa)["spec"]["minReplicas"] == raised  # type: ignore[index]

    destroyed = stack.destroy()
    assert changes(destroyed) == {"delete": len(objects) + 3}
    processes.wait_until(
        lambda: all(live(client, o) is None for o in objects), 60, "every object of the dev stack deleted"
    )
    stack.workspace.remove_stack(stack.name)


def test_policy_pack_blocks_a_violating_stack_before_anything_is_created(
    engine: pulumi_engine.Engine, client: kube.Kube
) -> None:
    platform = committed("prod")["wallet-platform:platform"]
    platform["namespace"] = "wallet-prod-violating"
    platform["spec"]["postgres"]["instances"] = 2  # prod needs at least 3 Postgres instances
    stack = open_stack(engine, "prod", {"wallet-platform:platform": platform})
    output: list[str] = []
    # `pulumi up` previews first, so the pack stops it here (the pack's environment defaults to prod)
    with pytest.raises(auto.CommandError):
        stack.preview(policy_packs=[str(PACK)], on_output=output.append)
    report = "\n".join(output)
    assert "[mandatory]  prod-data-ha" in report, report
    assert "Cluster/wallet-prod-pg.spec.instances: 2 is below the 3 instances prod requires" in report, report
    assert client.get("v1", "Namespace", "wallet-prod-violating") is None
    assert client.list("postgresql.cnpg.io/v1", "Cluster", "wallet-prod-violating") == []

    # the same stack without the violation passes the pack
    platform["spec"]["postgres"]["instances"] = 3
    stack.set_config("wallet-platform:platform", auto.ConfigValue(json.dumps(platform)))
    preview = stack.preview(policy_packs=[str(PACK)])
    assert changes(preview)["create"] > 0
    stack.workspace.remove_stack(stack.name)


def test_bad_config_fails_preview_with_the_field_path(engine: pulumi_engine.Engine) -> None:
    platform = committed("dev")["wallet-platform:platform"]
    platform["spec"]["services"][1]["maxReplicas"] = 0
    stack = open_stack(engine, "dev", {"wallet-platform:platform": platform})
    output: list[str] = []
    with pytest.raises(auto.CommandError):
        stack.preview(on_output=output.append)
    assert "platform.spec.services[1].maxReplicas: " in "\n".join(output), output
    stack.workspace.remove_stack(stack.name)


def test_staging_stack_installs_the_chart_and_the_operator_reconciles(
    engine: pulumi_engine.Engine, client: kube.Kube, plane: controlplane.ControlPlane, tmp_path: pathlib.Path
) -> None:
    platform = committed("staging")["wallet-platform:platform"]
    namespace, name = platform["namespace"], platform["name"]
    stack = open_stack(engine, "staging")
    up = stack.up()
    assert changes(up)["create"] >= 4
    ns = operator_env.NAMESPACE
    assert client.get("apps/v1", "Deployment", "wallet-operator", ns) is not None
    assert client.get("v1", "ServiceAccount", operator_env.ACCOUNT, ns) is not None
    assert client.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "walletplatforms.wallet.platform.io")
    policies = program.load_policies("staging")
    assert policies, "policies/staging holds the staging ScalingPolicies"
    for policy in policies:
        assert client.get(policy["apiVersion"], policy["kind"], policy["metadata"]["name"], namespace) is not None

    kubeconfig = operator_env.operator_kubeconfig(client, plane, tmp_path / "kubeconfig")
    operator = operator_env.Operator(kubeconfig, tmp_path, "pulumi-op", OPERATOR_ENV).start()
    try:
        processes.wait_until(lambda: operator.role() == "leader", 30, "operator leading")
        platforms.wait_condition(client, namespace, name, "Reconciled", "True", timeout=60)
        for obj in rendered("staging"):
            assert live(client, obj) is not None, f"{obj['kind']}/{obj['metadata']['name']}"
        # Ready needs the data tier, which no operator runs here: the operator says so from the
        # Cluster's (empty) status, never from one written by hand.
        processes.wait_until(
            lambda: platforms.get_platform(client, namespace, name)["status"].get("postgres") == "NotReady",
            30,
            "the operator reporting the data tier not ready",
        )
    finally:
        operator.stop()
    stack.destroy()
    stack.workspace.remove_stack(stack.name)
