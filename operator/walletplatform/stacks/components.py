"""Pulumi components around the one renderer.

``WalletPlatform`` (direct mode) registers every rendered object as a pulumi-kubernetes resource
(``apiextensions.CustomResource`` takes any apiVersion/kind, so one code path covers core kinds and
the CloudNativePG / redis-operator / prometheus-operator ones). HPA ``minReplicas`` belongs to the
scaling engine: the stack sets the static floor at creation and ignores the field afterwards, so a
floor the engine moved is never reverted and a second ``pulumi up`` shows no changes.

``OperatorInstall`` (operator mode) installs charts/wallet-operator with Helm, then the
WalletPlatform and the environment's ScalingPolicies, and lets the operator do the rest."""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from walletplatform import catalog, generated_secrets, render
from walletplatform.models import common
from walletplatform.render import labels, network


def _resource_name(obj: common.Manifest) -> str:
    meta = obj["metadata"]
    assert isinstance(meta, dict)
    return f"{str(obj['kind']).lower()}-{meta['name']}"


def type_token(api_version: str, kind: str) -> str:
    """The Kubernetes provider's token: core kinds are ``core/v1``, every other group as written."""
    return f"kubernetes:{'core/v1' if api_version == 'v1' else api_version}:{kind}"


class KubeObject(pulumi.CustomResource):
    """Any Kubernetes object, all top-level fields as inputs (``apiextensions.CustomResource`` only
    carries spec and metadata, which would drop a ConfigMap's data)."""

    def __init__(self, name: str, obj: common.Manifest, opts: pulumi.ResourceOptions) -> None:
        version = pulumi.ResourceOptions(version=k8s._utilities.get_version())  # type: ignore[no-untyped-call]
        super().__init__(
            type_token(str(obj["apiVersion"]), str(obj["kind"])),
            name,
            dict(obj),
            pulumi.ResourceOptions.merge(version, opts),
        )


SKIP_AWAIT = "pulumi.com/skipAwait"


def without_await(obj: common.Manifest) -> common.Manifest:
    """``obj`` with the provider's skip-await annotation: created without waiting for readiness."""
    meta = obj["metadata"]
    assert isinstance(meta, dict)
    annotations = meta.get("annotations") or {}
    assert isinstance(annotations, dict)
    return {**obj, "metadata": {**meta, "annotations": {**annotations, SKIP_AWAIT: "true"}}}


def register_object(
    obj: common.Manifest, parent: pulumi.Resource, depends_on: Sequence[pulumi.Resource], await_ready: bool = True
) -> KubeObject:
    """One rendered object as a Pulumi resource, unchanged (the parity test compares the inputs) unless
    ``await_ready`` is off, which adds only the provider's skip-await annotation."""
    ignore = ["spec.minReplicas"] if obj["kind"] == "HorizontalPodAutoscaler" else []
    if generated_secrets.generated_keys(obj):
        # The value the first `pulumi up` generated stays: later runs generate another and ignore it.
        obj = generated_secrets.fill(obj, None)
        ignore = ["data", "stringData"]
    if not await_ready:
        obj = without_await(obj)
    return KubeObject(
        _resource_name(obj),
        obj,
        pulumi.ResourceOptions(parent=parent, ignore_changes=ignore, depends_on=list(depends_on)),
    )


def platform_objects(resolved: catalog.ResolvedPlatform) -> list[common.Manifest]:
    """What a stack registers for one platform: every rendered object and, because the stack owns the
    namespace, the namespace's default deny of ingress that no policy admits."""
    deny = network.render_namespace_default_deny(resolved)
    return [*render.render_platform(resolved), *([deny] if deny else [])]


class WalletPlatform(pulumi.ComponentResource):
    """Every object of one platform; outputs name what applications and operators connect to."""

    services: pulumi.Output[dict[str, Any]]
    postgres: pulumi.Output[dict[str, str]]
    redis_service: pulumi.Output[str]
    hpas: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        resolved: catalog.ResolvedPlatform,
        opts: pulumi.ResourceOptions | None = None,
        *,
        await_ready: bool = True,
    ):
        super().__init__("wallet:platform:WalletPlatform", name, None, opts)
        objects = platform_objects(resolved)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": resolved.namespace, "labels": {labels.PLATFORM_LABEL: resolved.name}},
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=resolved.spec.retain_data),
        )
        self.children = [register_object(obj, self, [namespace], await_ready) for obj in objects]
        services = {
            s.name: {"name": labels.service_name(resolved.name, s.name), "port": s.port} for s in resolved.services
        }
        pg = labels.postgres_name(resolved.name)
        self.services = pulumi.Output.from_input(services)
        endpoints = {"rw": f"{pg}-rw", "ro": f"{pg}-ro"}
        if resolved.spec.postgres.pooler.enabled:
            endpoints["pooler"] = f"{pg}-pooler-rw"
        self.postgres = pulumi.Output.from_input(endpoints)
        self.redis_service = pulumi.Output.from_input(f"{labels.redis_name(resolved.name)}-leader")
        self.hpas = pulumi.Output.from_input(
            [labels.service_name(resolved.name, s.name) for s in resolved.services]  # one HPA per service
        )
        self.register_outputs(
            {
                "services": self.services,
                "postgres": self.postgres,
                "redis_service": self.redis_service,
                "hpas": self.hpas,
            }
        )


class OperatorInstall(pulumi.ComponentResource):
    """The operator's chart, the platform resource and the environment's ScalingPolicies."""

    release: pulumi.Output[str | None]

    def __init__(
        self,
        name: str,
        chart: pathlib.Path,
        document: dict[str, Any],
        policies: list[dict[str, Any]],
        opts: pulumi.ResourceOptions | None = None,
        *,
        default_deny: common.Manifest | None = None,
        await_ready: bool = True,
    ):
        super().__init__("wallet:platform:OperatorInstall", name, None, opts)
        release = k8s.helm.v3.Release(
            f"{name}-operator",
            chart=str(chart),
            namespace="wallet-system",
            create_namespace=True,
            skip_await=not await_ready,
            # Where pods do not run, no replica can answer admission reviews, and the webhook fails
            # closed: off there (the stack's config and policy pack check the platform at preview, and
            # the operator reports an invalid spec in status).
            values={"webhook": {"enabled": await_ready}},
            opts=pulumi.ResourceOptions(parent=self),
        )
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": document["metadata"]["namespace"]},
            opts=pulumi.ResourceOptions(parent=self),
        )
        after = [release, namespace]
        # The stack owns the namespace here too; the operator renders the rest of the platform into it.
        self.default_deny = register_object(default_deny, self, [namespace], await_ready) if default_deny else None
        self.platform = register_object(document, self, after)
        self.policies = [register_object(p, self, [*after, self.platform]) for p in policies]
        self.release = release.name
        self.register_outputs({"release": self.release})
