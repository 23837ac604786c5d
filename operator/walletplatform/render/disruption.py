"""PodDisruptionBudget of a service: at most one pod down at a time during voluntary disruptions.

``maxUnavailable: 1`` protects a scaled-out service and never blocks a node drain at one replica."""

from __future__ import annotations

from walletplatform.catalog import ResolvedPlatform
from walletplatform.models import common, service
from walletplatform.render import labels


def render_pdb(platform: ResolvedPlatform, svc: service.ServiceDefinition) -> common.Manifest:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": labels.metadata(
            labels.service_name(platform.name, svc.name), platform.namespace, platform.name, svc.name
        ),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": dict(labels.selector_labels(platform.name, svc.name))},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }
