"""The CrossGuard policy pack: every rule passes the compliant platform and reports a readable
violation for an object that breaks it (the same rules back walletctl validate)."""

from __future__ import annotations

import copy
import types
from collections.abc import Callable
from typing import Any

import pulumi_policy as policy
import pytest
from google.protobuf import json_format, struct_pb2
from pulumi_policy.proxy import unknown_checking_proxy
from walletplatform import catalog, render, rules
from walletplatform.stacks import components, guardrails

from tests.conftest import PROD_EXAMPLE, resolve_file


def through_struct(obj: dict[str, Any]) -> dict[str, Any]:
    message = struct_pb2.Struct()
    message.update(obj)
    return json_format.MessageToDict(message)


def as_resources(objects: list[Any]) -> list[Any]:
    """Resources the way the engine hands them to a stack policy: properties behind read-only proxies,
    every number a float (they travel as a protobuf Struct)."""
    return [
        types.SimpleNamespace(
            resource_type=components.type_token(o["apiVersion"], o["kind"]),
            props=unknown_checking_proxy(through_struct(o)),
            urn=f"urn:{i}",
            name=str(i),
        )
        for i, o in enumerate(objects)
    ]


def violations(name: str, objects: list[Any], env: str = "prod") -> list[str]:
    pack = {p.name: p for p in guardrails.render_policies()}
    found: list[str] = []
    args = policy.StackValidationArgs(as_resources(objects), {"environment": env})
    validate: Callable[..., None] = pack[name].validate  # type: ignore[assignment]
    validate(args, lambda message, urn=None: found.append(message))
    return found


def first(objects: list[Any], kind: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind)


BREAKERS: dict[str, tuple[Callable[[list[Any]], None], str]] = {
    "images-pinned": (
        lambda objs: first(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0].update(
            image="ghcr.io/x/y:latest"
        ),
        "latest",
    ),
    "resources-set": (
        lambda objs: first(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0].pop("resources"),
        "requests",
    ),
    "restricted-security-context": (
        lambda objs: first(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["securityContext"].update(
            allowPrivilegeEscalation=True
        ),
        "allowPrivilegeEscalation",
    ),
    "hpa-max-within-cap": (lambda objs: first(objs, "HorizontalPodAutoscaler")["spec"].update(maxReplicas=500), "500"),
    "pdb-for-multi-replica": (lambda objs: objs.remove(first(objs, "PodDisruptionBudget")), "PodDisruptionBudget"),
    "prod-data-ha": (lambda objs: first(objs, "Cluster")["spec"].update(instances=1), "instances"),
}


def test_every_rule_is_in_the_pack() -> None:
    assert {p.name for p in guardrails.render_policies()} == set(rules.RULES) == set(BREAKERS)


@pytest.mark.parametrize("name", sorted(BREAKERS))
def test_rule_passes_compliant_and_reports_violation(name: str, cat: catalog.Catalog) -> None:
    objects = render.render_platform(resolve_file(PROD_EXAMPLE, cat))
    assert violations(name, objects) == []
    broken = copy.deepcopy(objects)
    breaker, word = BREAKERS[name]
    breaker(broken)
    found = violations(name, broken)
    assert found and word in " ".join(found), found
    assert all(": " in message for message in found)
