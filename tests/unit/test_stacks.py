"""The Pulumi program under Pulumi's mocks: per environment, what it registers; parity with the
renderer (the direct stack's objects are the renderer's objects); HPA minReplicas left to the engine;
bad config fails with field paths; the committed stack configs equal the examples."""

from __future__ import annotations

import base64
import json
import pathlib
from typing import Any

import pulumi
import pytest
import yaml
from walletplatform import catalog, generated_secrets, render
from walletplatform.models import errors
from walletplatform.stacks import components, config, program

from tests.conftest import DEV_EXAMPLE, PROD_EXAMPLE, ROOT, load

STACKS = ROOT / "stacks" / "config"


class Recorder(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}


def stack_config(env: str) -> dict[str, Any]:
    data = yaml.safe_load((STACKS / f"Pulumi.{env}.yaml").read_text())["config"]
    return {"mode": data["wallet-platform:mode"], "platform": data["wallet-platform:platform"]}


def run_program(env: str, override: dict[str, Any] | None = None, extra: dict[str, str] | None = None) -> Recorder:
    raw = {**stack_config(env), **(override or {})}
    recorder = Recorder()
    pulumi.runtime.set_mocks(recorder, project="wallet-platform", stack=env, preview=False)
    pulumi.runtime.set_all_config(
        {"wallet-platform:mode": raw["mode"], "wallet-platform:platform": json.dumps(raw["platform"]), **(extra or {})}
    )

    @pulumi.runtime.test
    def body() -> None:
        program.run()

    body()
    return recorder


def custom(recorder: Recorder) -> list[pulumi.runtime.MockResourceArgs]:
    return [r for r in recorder.resources if r.typ.startswith("kubernetes:") and "Namespace" not in r.typ]


def without_generated(inputs: dict[str, Any]) -> dict[str, Any]:
    """The registered inputs without the generated Secret values, after checking the stack made them."""
    keys = generated_secrets.generated_keys(inputs)
    if not keys:
        return inputs
    data = inputs["data"]
    assert set(data) == set(keys)
    assert all(len(base64.b64decode(value)) >= 32 for value in data.values())
    return {k: v for k, v in inputs.items() if k != "data"}


def stack_objects(resolved: catalog.ResolvedPlatform) -> list[Any]:
    """Every rendered object and the namespace's default deny (the stack owns the namespace)."""
    objects = components.platform_objects(resolved)
    assert objects[:-1] == render.render_platform(resolved)
    assert objects[-1]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    return objects


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_direct_stack_registers_exactly_the_rendered_objects(env: str, cat: catalog.Catalog) -> None:
    recorder = run_program(env)
    stack = config.parse_stack_config(stack_config(env), cat)
    expected = stack_objects(stack.resolved)
    got = custom(recorder)
    assert len(got) == len(expected)
    by_name = {(r.inputs["kind"], r.inputs["metadata"]["name"]): r for r in got}
    for obj in expected:
        registered = by_name[(obj["kind"], obj["metadata"]["name"])]  # type: ignore[index]
        assert without_generated(registered.inputs) == obj, obj["metadata"]
        group = "core/v1" if obj["apiVersion"] == "v1" else obj["apiVersion"]
        assert registered.typ == f"kubernetes:{group}:{obj['kind']}"
    components = [r for r in recorder.resources if r.typ == "wallet:platform:WalletPlatform"]
    assert len(components) == 1 and components[0].name == stack.resolved.name
    deployments = [r for r in got if r.inputs["kind"] == "Deployment"]
    assert deployments and all("replicas" not in r.inputs["spec"] for r in deployments)


def test_await_readiness_off_adds_only_the_skip_await_annotation(cat: catalog.Catalog) -> None:
    recorder = run_program("dev", extra={"wallet-platform:awaitReadiness": "false"})
    expected = stack_objects(config.parse_stack_config(stack_config("dev"), cat).resolved)
    got = custom(recorder)
    assert len(got) == len(expected)
    by_name = {(r.inputs["kind"], r.inputs["metadata"]["name"]): r.inputs for r in got}
    for obj in expected:
        inputs = by_name[(obj["kind"], obj["metadata"]["name"])]  # type: ignore[index]
        assert inputs["metadata"]["annotations"].pop("pulumi.com/skipAwait") == "true"
        if not inputs["metadata"]["annotations"]:
            del inputs["metadata"]["annotations"]
        assert without_generated(inputs) == obj
    staging = run_program("staging", extra={"wallet-platform:awaitReadiness": "false"})
    release = next(r for r in staging.resources if r.typ == "kubernetes:helm.sh/v3:Release")
    assert release.inputs["skipAwait"] is True
    assert release.inputs["values"] == {"webhook": {"enabled": False}}  # no pod could answer it


def test_staging_stack_installs_the_chart_platform_and_policies() -> None:
    recorder = run_program("staging")
    types = [r.typ for r in recorder.resources]
    assert "kubernetes:helm.sh/v3:Release" in types
    release = next(r for r in recorder.resources if r.typ == "kubernetes:helm.sh/v3:Release")
    assert pathlib.Path(release.inputs["chart"]).name == "wallet-operator"
    assert release.inputs["values"] == {"webhook": {"enabled": True}}
    kinds = [r.inputs.get("kind") for r in custom(recorder)]
    assert kinds.count("WalletPlatform") == 1 and kinds.count("ScalingPolicy") >= 1
    # The stack owns the platform's namespace, so it also puts the namespace's default deny there.
    (deny,) = [r.inputs for r in custom(recorder) if r.inputs.get("kind") == "NetworkPolicy"]
    assert deny["metadata"]["name"] == "wallet-staging-default-deny"
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}


def test_bad_config_names_the_field(cat: catalog.Catalog) -> None:
    raw = stack_config("dev")
    raw["platform"]["spec"]["services"][1]["maxReplicas"] = 0
    raw["mode"] = "sideways"
    with pytest.raises(errors.SpecError) as caught:
        config.parse_stack_config(raw, cat)
    lines = [str(p) for p in caught.value.problems]
    assert lines[0] == "mode: 'sideways' is not one of direct, operator"
    assert any(line.startswith("platform.spec.services[1].maxReplicas:") for line in lines), lines


@pytest.mark.parametrize(("env", "example"), [("dev", DEV_EXAMPLE), ("prod", PROD_EXAMPLE)])
def test_stack_configs_equal_the_examples(env: str, example: pathlib.Path) -> None:
    doc = load(example)
    assert stack_config(env)["platform"] == {
        "name": doc["metadata"]["name"],  # type: ignore[index]
        "namespace": doc["metadata"]["namespace"],  # type: ignore[index]
        "spec": doc["spec"],
    }
