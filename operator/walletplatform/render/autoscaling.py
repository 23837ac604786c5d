"""HorizontalPodAutoscaler (autoscaling/v2) and the optional recommendation-only VPA of a service.

``minReplicas`` is rendered as the static floor. Its owner at run time is the scaling engine's field
manager; ``split_floor`` separates it so an adapter can apply the rest under its own manager."""

from __future__ import annotations

from walletplatform.catalog import ResolvedPlatform
from walletplatform.models import common, service
from walletplatform.render import labels


def _direction(direction: service.ScalingDirection) -> common.JsonValue:
    return {
        "stabilizationWindowSeconds": direction.stabilization_window_seconds,
        "selectPolicy": direction.select_policy.value,
        "policies": [
            {"type": p.type.value, "value": p.value, "periodSeconds": p.period_seconds} for p in direction.policies
        ],
    }


def render_hpa(platform: ResolvedPlatform, svc: service.ServiceDefinition) -> common.Manifest:
    """The HPA with the service's targets, extra Pods metrics and behaviour."""
    name = labels.service_name(platform.name, svc.name)
    metrics: list[common.JsonValue] = []
    for resource, target in (("cpu", svc.targets.cpu_utilization), ("memory", svc.targets.memory_utilization)):
        if target is not None:
            metrics.append(
                {
                    "type": "Resource",
                    "resource": {"name": resource, "target": {"type": "Utilization", "averageUtilization": target}},
                }
            )
    for metric in svc.extra_metrics:
        metrics.append(
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": metric.name},
                    "target": {"type": "AverageValue", "averageValue": metric.average_value},
                },
            }
        )
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": labels.metadata(name, platform.namespace, platform.name, svc.name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": svc.min_replicas,
            "maxReplicas": svc.max_replicas,
            "metrics": metrics,
            "behavior": {
                "scaleUp": _direction(svc.behavior.scale_up),
                "scaleDown": _direction(svc.behavior.scale_down),
            },
        },
    }


def split_floor(hpa: common.Manifest) -> tuple[common.Manifest, common.Manifest]:
    """Split a rendered HPA into (everything but minReplicas, an apply patch holding only minReplicas)."""
    spec = hpa["spec"]
    assert isinstance(spec, dict)
    rest = {**hpa, "spec": {k: v for k, v in spec.items() if k != "minReplicas"}}
    floor: common.Manifest = {
        "apiVersion": hpa["apiVersion"],
        "kind": hpa["kind"],
        "metadata": {"name": _name(hpa), "namespace": _namespace(hpa)},
        "spec": {"minReplicas": spec["minReplicas"]},
    }
    return rest, floor


def render_floor(hpa_name: str, namespace: str, floor: int) -> common.Manifest:
    """The apply patch through which the scaling engine owns an HPA's minReplicas."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": hpa_name, "namespace": namespace},
        "spec": {"minReplicas": floor},
    }


def _name(obj: common.Manifest) -> str:
    meta = obj["metadata"]
    assert isinstance(meta, dict) and isinstance(meta["name"], str)
    return meta["name"]


def _namespace(obj: common.Manifest) -> str:
    meta = obj["metadata"]
    assert isinstance(meta, dict) and isinstance(meta["namespace"], str)
    return meta["namespace"]


def render_vpa(platform: ResolvedPlatform, svc: service.ServiceDefinition) -> common.Manifest | None:
    """A VPA in recommendation mode (updateMode Off) so it never fights the HPA; None when disabled."""
    if not platform.vpa.get(svc.name, False):
        return None
    name = labels.service_name(platform.name, svc.name)
    return {
        "apiVersion": "autoscaling.k8s.io/v1",
        "kind": "VerticalPodAutoscaler",
        "metadata": labels.metadata(name, platform.namespace, platform.name, svc.name),
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "updatePolicy": {"updateMode": "Off"},
            "resourcePolicy": {
                "containerPolicies": [{"containerName": svc.name, "controlledResources": ["cpu", "memory"]}]
            },
        },
    }
