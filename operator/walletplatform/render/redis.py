"""Redis as an OT-Container-Kit redis-operator ``RedisCluster`` plus the ConfigMap of its settings.

Sharding and replication are the redis-operator's job; we only say how many leaders and followers."""

from __future__ import annotations

from walletplatform.catalog import ResolvedPlatform
from walletplatform.models import common
from walletplatform.render import labels

IMAGE = "quay.io/opstree/redis"
CONFIG_KEY = "redis-additional.conf"


def derive_maxmemory(memory: str) -> int:
    """Leave 25% of the container's memory for replication buffers, forks and fragmentation."""
    return int(common.parse_quantity(memory) * 0.75)


def render_config(platform: ResolvedPlatform) -> common.Manifest:
    redis = platform.spec.redis
    lines = [
        f"maxmemory {derive_maxmemory(redis.memory)}",
        f"maxmemory-policy {redis.eviction_policy.value}",
        "cluster-node-timeout 5000",
        f"appendonly {'yes' if redis.append_only and redis.persistence else 'no'}",
        "appendfsync everysec",
    ]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": labels.metadata(
            f"{labels.redis_name(platform.name)}-config", platform.namespace, platform.name, "redis"
        ),
        "data": {CONFIG_KEY: "\n".join(lines) + "\n"},
    }


def render_cluster(platform: ResolvedPlatform) -> common.Manifest:
    redis = platform.spec.redis
    name = labels.redis_name(platform.name)
    version = redis.version if redis.version.startswith("v") else f"v{redis.version}"
    spec: dict[str, common.JsonValue] = {
        "clusterSize": redis.leaders,
        "clusterVersion": "v7",
        "persistenceEnabled": redis.persistence is not None,
        "kubernetesConfig": {
            "image": f"{IMAGE}:{version}",
            "imagePullPolicy": "IfNotPresent",
            "resources": {
                "requests": {"cpu": redis.cpu, "memory": redis.memory},
                "limits": {"cpu": redis.cpu, "memory": redis.memory},
            },
        },
        "redisLeader": {"replicas": redis.leaders, "redisConfig": {"additionalRedisConfig": f"{name}-config"}},
        "redisFollower": {
            "replicas": redis.leaders * redis.followers_per_leader,
            "redisConfig": {"additionalRedisConfig": f"{name}-config"},
        },
        "podSecurityContext": {"runAsUser": 1000, "fsGroup": 1000},
    }
    if redis.persistence is not None:
        claim: dict[str, common.JsonValue] = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": redis.persistence.size}},
        }
        if redis.persistence.storage_class:
            claim["storageClassName"] = redis.persistence.storage_class
        spec["storage"] = {"keepAfterDelete": platform.spec.retain_data, "volumeClaimTemplate": {"spec": claim}}
    meta = labels.metadata(name, platform.namespace, platform.name, "redis")
    if platform.spec.retain_data:
        meta["annotations"] = {labels.RETAIN_ANNOTATION: "true"}
    return {"apiVersion": "redis.redis.opstreelabs.in/v1beta2", "kind": "RedisCluster", "metadata": meta, "spec": spec}
