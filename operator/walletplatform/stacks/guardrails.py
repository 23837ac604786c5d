"""The CrossGuard policy pack's policies: one StackValidationPolicy per rule in ``rules.RULES`` (the
same pure functions behind ``walletctl validate``), reading the stack's Kubernetes objects back from
the resources' inputs. policies/pack/__main__.py serves them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pulumi_policy as policy

from walletplatform import rules
from walletplatform.models import common

ENVIRONMENTS = ("dev", "staging", "prod")
CONFIG = policy.PolicyConfigSchema(
    properties={"environment": {"type": "string", "enum": list(ENVIRONMENTS), "default": "prod"}}
)


def plain(value: Any) -> Any:
    """A resource's properties as plain dicts and lists: the engine hands them over wrapped in
    read-only proxies (Mapping and Sequence) that raise on values unknown during preview, and every
    number as a float (protobuf Struct), so whole numbers become ints again, as in the manifest."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {key: plain(value[key]) for key in value}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [plain(item) for item in value]
    return value


def read_objects(resources: list[Any]) -> list[common.Manifest]:
    """Kubernetes objects among a stack's resources (their inputs are the rendered objects)."""
    return [
        plain(r.props)
        for r in resources
        if r.resource_type.startswith("kubernetes:") and "apiVersion" in r.props and "kind" in r.props
    ]


def _validator(rule: rules.Rule) -> Callable[[policy.StackValidationArgs, Callable[..., None]], None]:
    def validate(args: policy.StackValidationArgs, report_violation: Callable[..., None]) -> None:
        env = (args.get_config() or {}).get("environment", "prod")
        for problem in rule(read_objects(args.resources), env):
            report_violation(f"{problem.path}: {problem.message}", None)

    return validate


def render_policies() -> list[policy.StackValidationPolicy]:
    return [
        policy.StackValidationPolicy(
            name=name,
            description=(rule.__doc__ or name).strip().splitlines()[0],
            validate=_validator(rule),
            enforcement_level=policy.EnforcementLevel.MANDATORY,
            config_schema=CONFIG,
        )
        for name, rule in rules.RULES.items()
    ]
