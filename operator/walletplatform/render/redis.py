"""Redis as an OT-Container-Kit redis-operator ``RedisCluster`` plus the ConfigMap of its settings.

Sharding and replication are the redis-operator's job; we only say how many leaders and followers."""

from __future__ import annotations

from walletplatform.catalog import ResolvedPlatform
from walletplatform.models import common
from walletplatform.render import labels

# The project's image, built from Debian's redis-server with an entrypoint that honours the operator's
# bootstrap contract (images/redis).
IMAGE = "ghcr.io/wallet-platform/redis"
CONFIG_KEY = "redis-additional.conf"
PASSWORD_KEY = "password"
# nodes.conf (the node's cluster identity) on a volume of its own: without it a restarted master comes
# back with a new node ID and its slots stay unreachable for good (measured with the real operator).
NODE_CONF_SIZE = "64Mi"
UID = 1000
# The restricted Pod Security Standard: the operator copies an unset container securityContext as is.
CONTAINER_SECURITY: common.JsonValue = {
    "runAsNonRoot": True,
    "runAsUser": UID,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


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
        "metadata": _metadata(platform, f"{labels.redis_name(platform.name)}-config"),
        "data": {CONFIG_KEY: "\n".join(lines) + "\n"},
    }


def auth_secret_name(platform: str) -> str:
    return f"{labels.redis_name(platform)}-auth"


def render_auth_secret(platform: ResolvedPlatform) -> common.Manifest:
    """The Redis password's Secret, without the password: the adapters that apply it (operator, Pulumi
    stacks) generate the keys the generated-keys annotation names once, and keep them afterwards, so no
    rendered object ever holds a literal password."""
    meta = _metadata(platform, auth_secret_name(platform.name))
    annotations = meta.setdefault("annotations", {})
    assert isinstance(annotations, dict)
    annotations[labels.GENERATED_KEYS_ANNOTATION] = PASSWORD_KEY
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque"}


def render_cluster(platform: ResolvedPlatform) -> common.Manifest:
    redis = platform.spec.redis
    name = labels.redis_name(platform.name)
    version = redis.version if redis.version.startswith("v") else f"v{redis.version}"
    spec: dict[str, common.JsonValue] = {
        "clusterSize": redis.leaders,
        "clusterVersion": "v7",
        "persistenceEnabled": redis.persistence is not None,
        "kubernetesConfig": {
            "image": redis.image or f"{IMAGE}:{version}",
            "imagePullPolicy": "IfNotPresent",
            "redisSecret": {"name": auth_secret_name(platform.name), "key": PASSWORD_KEY},
            "resources": {
                "requests": {"cpu": redis.cpu, "memory": redis.memory},
                "limits": {"cpu": redis.cpu, "memory": redis.memory},
            },
            # Unretained data goes with the StatefulSets (their claims get them as owner). The operator's
            # own finalizer deletes the claims while the StatefulSets still run, and a pod restarted in
            # between brought its claims back, left behind for good (seen with the real operator).
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": "Retain" if platform.spec.retain_data else "Delete",
                "whenScaled": "Retain",
            },
        },
        "redisLeader": {
            "replicas": redis.leaders,
            "redisConfig": {"additionalRedisConfig": f"{name}-config"},
            "securityContext": CONTAINER_SECURITY,
        },
        "redisFollower": {
            "replicas": redis.leaders * redis.followers_per_leader,
            "redisConfig": {"additionalRedisConfig": f"{name}-config"},
            "securityContext": CONTAINER_SECURITY,
        },
        "podSecurityContext": {
            "runAsUser": UID,
            "runAsGroup": UID,
            "fsGroup": UID,
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    storage_class = redis.persistence.storage_class if redis.persistence else None
    storage: dict[str, common.JsonValue] = {
        "keepAfterDelete": platform.spec.retain_data,
        "nodeConfVolume": True,
        "nodeConfVolumeClaimTemplate": {"spec": _claim(NODE_CONF_SIZE, storage_class)},
    }
    if redis.persistence is not None:
        storage["volumeClaimTemplate"] = {"spec": _claim(redis.persistence.size, storage_class)}
    spec["storage"] = storage
    return {
        "apiVersion": "redis.redis.opstreelabs.in/v1beta2",
        "kind": "RedisCluster",
        "metadata": _metadata(platform, name),
        "spec": spec,
    }


def _claim(size: str, storage_class: str | None) -> dict[str, common.JsonValue]:
    claim: dict[str, common.JsonValue] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
    }
    if storage_class:
        claim["storageClassName"] = storage_class
    return claim


def _metadata(platform: ResolvedPlatform, name: str) -> dict[str, common.JsonValue]:
    """The cluster and its config are kept together when data is retained: a kept cluster needs its config."""
    return labels.data_metadata(name, platform.namespace, platform.name, "redis", platform.spec.retain_data)
