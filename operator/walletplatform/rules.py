"""Guardrails as pure functions over rendered objects: the one rule set behind ``walletctl validate``,
the operator's admission checks and the Pulumi CrossGuard policy pack.

Each rule takes the objects of one platform and its environment and returns Problems whose path
names the object and field, e.g. ``Deployment/wallet-dev-user.spec...image``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from walletplatform import catalog
from walletplatform.models import common, errors, scaling

Environment = Literal["dev", "staging", "prod"]
HPA_MAX_CAP: dict[str, int] = {"dev": 30, "staging": 60, "prod": 200}
Rule = Callable[[Sequence[common.Manifest], Environment], list[errors.Problem]]


def _get(obj: common.JsonValue, *path: str | int) -> common.JsonValue:
    for key in path:
        if isinstance(obj, dict) and isinstance(key, str):
            obj = obj.get(key)
        elif isinstance(obj, list) and isinstance(key, int) and key < len(obj):
            obj = obj[key]
        else:
            return None
    return obj


def object_id(obj: common.Manifest) -> str:
    return f"{obj.get('kind')}/{_get(obj, 'metadata', 'name')}"


def _containers(obj: common.Manifest) -> list[tuple[str, dict[str, common.JsonValue]]]:
    if obj.get("kind") != "Deployment":
        return []
    found = _get(obj, "spec", "template", "spec", "containers")
    items = found if isinstance(found, list) else []
    return [(f"spec.template.spec.containers[{i}]", c) for i, c in enumerate(items) if isinstance(c, dict)]


def rule_images_pinned(objects: Sequence[common.Manifest], env: Environment) -> list[errors.Problem]:
    """Every container image has a version tag or digest, never latest."""
    problems = []
    for obj in objects:
        for path, container in _containers(obj):
            image = container.get("image")
            last = str(image).split("@")[0].rsplit("/", 1)[-1]
            if not isinstance(image, str) or image.endswith(":latest") or ("@" not in image and ":" not in last):
                problems.append(
                    errors.Problem(
                        path=f"{object_id(obj)}.{path}.image",
                        message=f"{image!r} is not pinned to a version tag or digest",
                    )
                )
    return problems


def rule_resources_set(objects: Sequence[common.Manifest], env: Environment) -> list[errors.Problem]:
    """Every container sets CPU and memory requests and limits."""
    problems = []
    for obj in objects:
        for path, container in _containers(obj):
            for section in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if _get(container, "resources", section, resource) is None:
                        problems.append(
                            errors.Problem(
                                path=f"{object_id(obj)}.{path}.resources.{section}.{resource}", message="is not set"
                            )
                        )
    return problems


_RESTRICTED: tuple[tuple[tuple[str, ...], common.JsonValue], ...] = (
    (("allowPrivilegeEscalation",), False),
    (("runAsNonRoot",), True),
    (("readOnlyRootFilesystem",), True),
    (("seccompProfile", "type"), "RuntimeDefault"),
    (("capabilities", "drop"), ["ALL"]),
)


def rule_restricted_security(objects: Sequence[common.Manifest], env: Environment) -> list[errors.Problem]:
    """Containers meet the restricted Pod Security level and have a read-only root filesystem."""
    problems = []
    for obj in objects:
        for path, container in _containers(obj):
            for keys, wanted in _RESTRICTED:
                actual = _get(container, "securityContext", *keys)
                if actual != wanted:
                    problems.append(
                        errors.Problem(
                            path=f"{object_id(obj)}.{path}.securityContext.{'.'.join(keys)}",
                            message=f"{actual!r} must be {wanted!r}",
                        )
                    )
    return problems


def rule_hpa_cap(objects: Sequence[common.Manifest], env: Environment) -> list[errors.Problem]:
    """An HPA's maxReplicas stays within the environment's cap."""
    problems = []
    for obj in objects:
        if obj.get("kind") == "HorizontalPodAutoscaler":
            high = _get(obj, "spec", "maxReplicas")
            if isinstance(high, int) and high > HPA_MAX_CAP[env]:
                problems.append(
                    errors.Problem(
                        path=f"{object_id(obj)}.spec.maxReplicas",
                        message=f"{high} is above the {env} cap of {HPA_MAX_CAP[env]}",
                    )
                )
    return problems


def rule_pdb_for_multi_replica(objects: Sequence[common.Manifest], env: Environment) -> list[errors.Problem]:
    """Every Deployment that can run more than one replica has a PodDisruptionBudget selecting it."""
    pdb_selectors = [
        _get(o, "spec", "selector", "matchLabels") for o in objects if o.get("kind") == "PodDisruptionBudget"
    ]
    hpa_max = {
        _get(o, "spec", "scaleTargetRef", "name"): _get(o, "spec", "maxReplicas")
        for o in objects
        if o.get("kind") == "HorizontalPodAutoscaler"
    }
    problems = []
    for obj in objects:
        if obj.get("kind") != "Deployment":
            continue
        name = _get(obj, "metadata", "name")
        high = hpa_max.get(name, _get(obj, "spec", "replicas"))
        if not isinstance(high, int) or high <= 1:
            continue
        pod_labels = _get(obj, "spec", "template", "metadata", "labels")
        covered = any(
            isinstance(sel, dict)
            and isinstance(pod_labels, dict)
            and all(pod_labels.get(k) == v for k, v in sel.items())
            for sel in pdb_selectors
        )
        if not covered:
            problems.append(
                errors.Problem(
                    path=object_id(obj), message=f"runs up to {high} replicas but has no PodDisruptionBudget"
                )
            )
    return problems


def rule_prod_data_ha(objects: Sequence[common.Manifest], env: Environment) -> list[errors.Problem]:
    """In prod: at least 3 Postgres instances, at least 3 Redis leaders, each with a follower."""
    if env != "prod":
        return []
    problems = []
    for obj in objects:
        if obj.get("kind") == "Cluster":
            instances = _get(obj, "spec", "instances")
            if not isinstance(instances, int) or instances < 3:
                problems.append(
                    errors.Problem(
                        path=f"{object_id(obj)}.spec.instances",
                        message=f"{instances} is below the 3 instances prod requires",
                    )
                )
        if obj.get("kind") == "RedisCluster":
            leaders = _get(obj, "spec", "clusterSize")
            followers = _get(obj, "spec", "redisFollower", "replicas")
            if not isinstance(leaders, int) or leaders < 3:
                problems.append(
                    errors.Problem(
                        path=f"{object_id(obj)}.spec.clusterSize",
                        message=f"{leaders} is below the 3 leaders prod requires",
                    )
                )
            elif not isinstance(followers, int) or followers < leaders:
                problems.append(
                    errors.Problem(
                        path=f"{object_id(obj)}.spec.redisFollower.replicas",
                        message=f"{followers} leaves a leader without a follower in prod",
                    )
                )
    return problems


RULES: dict[str, Rule] = {
    "images-pinned": rule_images_pinned,
    "resources-set": rule_resources_set,
    "restricted-security-context": rule_restricted_security,
    "hpa-max-within-cap": rule_hpa_cap,
    "pdb-for-multi-replica": rule_pdb_for_multi_replica,
    "prod-data-ha": rule_prod_data_ha,
}


def check_objects(objects: Sequence[common.Manifest], env: Environment) -> list[errors.Problem]:
    """Every rule over a platform's objects."""
    return [problem for rule in RULES.values() for problem in rule(objects, env)]


def check_platform(platform: catalog.ResolvedPlatform, objects: Sequence[common.Manifest]) -> list[errors.Problem]:
    return check_objects(objects, platform.spec.environment)


def check_policy(
    spec: scaling.ScalingPolicySpec, platform: catalog.ResolvedPlatform | None, cat: catalog.Catalog
) -> list[errors.Problem]:
    """Cross-object checks of a ScalingPolicy: its services exist (in the platform when known)."""
    known = set(platform.names) if platform is not None else set(cat)
    where = f"platform {platform.name!r}" if platform is not None else "the catalog"
    return [
        errors.Problem(path=f"spec.services[{i}]", message=f"{name!r} is not a service of {where}")
        for i, name in enumerate(spec.services)
        if name not in known
    ]
