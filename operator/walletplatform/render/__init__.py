"""The one renderer: a resolved platform in, an ordered list of Kubernetes objects out. No I/O.

The operator applies these objects, the Pulumi stacks wrap them, the CLI prints them. Order: config
and data tiers first, then per service (ServiceAccount, Service, Deployment, HPA, PDB, NetworkPolicy,
VPA), then monitoring, so a plain ``kubectl apply`` of the output works top to bottom."""

from __future__ import annotations

from collections.abc import Callable

from walletplatform.catalog import ResolvedPlatform
from walletplatform.models import common, service
from walletplatform.render import autoscaling, disruption, monitoring, network, postgres, redis, workload

ServiceBuilder = Callable[[ResolvedPlatform, service.ServiceDefinition], common.Manifest | None]
PlatformBuilder = Callable[[ResolvedPlatform], common.Manifest | None]

PLATFORM_BUILDERS: tuple[PlatformBuilder, ...] = (
    redis.render_config,
    redis.render_auth_secret,
    postgres.render_cluster,
    postgres.render_pooler,
    redis.render_cluster,
    network.render_postgres_policy,
    network.render_pooler_policy,
    network.render_redis_policy,
)
SERVICE_BUILDERS: tuple[ServiceBuilder, ...] = (
    workload.render_service_account,
    workload.render_service,
    workload.render_deployment,
    autoscaling.render_hpa,
    disruption.render_pdb,
    network.render_network_policy,
    autoscaling.render_vpa,
)
# Every (apiVersion, kind) the builders can emit: the operator lists these by label to find children to
# prune. A unit test renders every example and fails if a builder emits a kind missing here.
KINDS: tuple[tuple[str, str], ...] = (
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("postgresql.cnpg.io/v1", "Pooler"),
    ("redis.redis.opstreelabs.in/v1beta2", "RedisCluster"),
    ("v1", "ServiceAccount"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("autoscaling.k8s.io/v1", "VerticalPodAutoscaler"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
)
MONITORING_BUILDERS: tuple[PlatformBuilder, ...] = (
    monitoring.render_service_monitor,
    postgres.render_pod_monitor,
    monitoring.render_prometheus_rule,
)


def render_platform(platform: ResolvedPlatform) -> list[common.Manifest]:
    """Every object of the platform, deterministic and in apply order."""
    objects = [obj for build in PLATFORM_BUILDERS if (obj := build(platform)) is not None]
    for svc in platform.services:
        objects += [obj for build in SERVICE_BUILDERS if (obj := build(platform, svc)) is not None]
    objects += [obj for build in MONITORING_BUILDERS if (obj := build(platform)) is not None]
    return objects
