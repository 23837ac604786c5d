"""The data tier as the real operators need it (each found by running CloudNativePG and redis-operator
against what we render): Redis node identity kept across restarts, a short smart shutdown with a
pooler, a PodMonitor, WAL sized from the volume, our labels on the instance pods, restricted Redis
pods, NetworkPolicies in front of Postgres, PgBouncer and Redis, and a Postgres version one can run."""

from __future__ import annotations

from typing import Any

import pytest
from walletplatform import catalog, render
from walletplatform.models import common, platform
from walletplatform.render import labels, postgres

from tests.conftest import DEV_EXAMPLE, PROD_EXAMPLE, resolve_file


def objects(path: Any, cat: catalog.Catalog) -> list[dict[str, Any]]:
    return render.render_platform(resolve_file(path, cat))  # type: ignore[return-value]


def one(items: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    (found,) = [o for o in items if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    return found


@pytest.mark.parametrize("path", [DEV_EXAMPLE, PROD_EXAMPLE], ids=["dev", "prod"])
def test_redis_keeps_each_node_identity_on_a_volume(path: Any, cat: catalog.Catalog) -> None:
    storage = one(objects(path, cat), "RedisCluster")["spec"]["storage"]
    assert storage["nodeConfVolume"] is True
    assert storage["nodeConfVolumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] == "64Mi"


def test_redis_pods_meet_the_restricted_profile(cat: catalog.Catalog) -> None:
    spec = one(objects(DEV_EXAMPLE, cat), "RedisCluster")["spec"]
    for role in ("redisLeader", "redisFollower"):
        assert spec[role]["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }
    assert spec["podSecurityContext"]["runAsNonRoot"] is True
    assert spec["podSecurityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_failover_is_not_held_up_by_pooled_connections(cat: catalog.Catalog) -> None:
    for example in (PROD_EXAMPLE, DEV_EXAMPLE):
        items = objects(example, cat)
        # Not CloudNativePG's 180 s default: pools never disconnect, and that stalls the election.
        assert one(items, "Cluster")["spec"]["smartShutdownTimeout"] == postgres.SMART_SHUTDOWN_SECONDS == 1
        pooler = one(items, "Pooler")["spec"]
        assert pooler["pgbouncer"]["parameters"]["server_login_retry"] == "1"  # not 15 s
        assert pooler["template"]["spec"]["containers"][0]["image"] == postgres.PGBOUNCER_IMAGE
        # PgBouncer's pods carry the platform's labels like every other pod of the platform.
        assert pooler["template"]["metadata"]["labels"][labels.PLATFORM_LABEL] in ("wallet-dev", "wallet-prod")


def test_instances_carry_our_labels_and_metrics_come_from_a_pod_monitor(cat: catalog.Catalog) -> None:
    items = objects(DEV_EXAMPLE, cat)
    spec = one(items, "Cluster")["spec"]
    assert "monitoring" not in spec  # no enablePodMonitor: deprecated by CloudNativePG
    assert spec["inheritedMetadata"]["labels"][labels.PLATFORM_LABEL] == "wallet-dev"
    assert spec["inheritedMetadata"]["labels"]["app.kubernetes.io/component"] == "postgres"
    monitor = one(items, "PodMonitor")
    # CloudNativePG deletes a PodMonitor named like the cluster while its own is disabled.
    assert monitor["metadata"]["name"] == "wallet-dev-pg-metrics"
    assert monitor["spec"] == {
        "selector": {"matchLabels": {"cnpg.io/cluster": "wallet-dev-pg"}},
        "podMetricsEndpoints": [{"port": "metrics"}],
    }


@pytest.mark.parametrize(
    ("size", "min_wal", "max_wal"),
    [("5Gi", "320MB", "1280MB"), ("20Gi", "1024MB", "4096MB"), ("1Ti", "1024MB", "4096MB"), ("100Mi", "16MB", "64MB")],
)
def test_wal_sizes_follow_the_volume(size: str, min_wal: str, max_wal: str) -> None:
    assert postgres.derive_wal_sizes(size) == (min_wal, max_wal)
    spec = platform.Postgres(storage=platform.Storage(size=size))
    parameters = postgres.derive_parameters(spec)
    assert (parameters["min_wal_size"], parameters["max_wal_size"]) == (min_wal, max_wal)


def test_the_default_postgres_version_has_images() -> None:
    assert platform.Postgres().version == "17"


def _sources(policy: dict[str, Any], port: int) -> list[common.JsonValue]:
    return [
        peer
        for rule in policy["spec"]["ingress"]
        if {"protocol": "TCP", "port": port} in rule["ports"]
        for peer in rule["from"]
    ]


def _service(name: str) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": dict(labels.selector_labels("wallet-prod", name))}}


def test_only_dependent_services_and_the_data_tier_reach_postgres_and_redis(cat: catalog.Catalog) -> None:
    items = objects(PROD_EXAMPLE, cat)
    pg = one(items, "NetworkPolicy", "wallet-prod-pg-instances")
    assert pg["spec"]["policyTypes"] == ["Ingress"]
    to_postgres = _sources(pg, 5432)
    for svc in ("user", "account", "transaction", "payment", "compliance"):
        assert _service(svc) in to_postgres
    assert _service("notification") not in to_postgres and _service("api-gateway") not in to_postgres
    assert {"podSelector": {"matchLabels": {"cnpg.io/cluster": "wallet-prod-pg"}}} in to_postgres  # replication
    assert _sources(pg, 8000) == [
        {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app.kubernetes.io/name": "cloudnative-pg"}}},
        {"podSelector": {"matchLabels": {"cnpg.io/cluster": "wallet-prod-pg"}}},
    ]
    pooler = one(items, "NetworkPolicy", "wallet-prod-pg-pooler-rw")
    assert pooler["spec"]["podSelector"] == {"matchLabels": {"cnpg.io/poolerName": "wallet-prod-pg-pooler-rw"}}
    assert _service("compliance") in _sources(pooler, 5432) and _service("notification") not in _sources(pooler, 5432)
    rd = one(items, "NetworkPolicy", "wallet-prod-redis")
    to_redis = _sources(rd, 6379)
    assert _service("notification") in to_redis and _service("api-gateway") in to_redis
    assert _service("compliance") not in to_redis
    assert {"namespaceSelector": {}, "podSelector": {"matchLabels": {"control-plane": "redis-operator"}}} in _sources(
        rd, 16379
    )


def test_unretained_redis_claims_go_with_their_statefulsets(cat: catalog.Catalog) -> None:
    kept = one(objects(DEV_EXAMPLE, cat), "RedisCluster")["spec"]
    assert kept["kubernetesConfig"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"
    assert kept["storage"]["keepAfterDelete"] is True
    spec = platform.WalletPlatformSpec.model_validate({"services": [{"name": "user"}], "retainData": False})
    dropped = one(render.render_platform(catalog.resolve("p", "ns", spec, cat)), "RedisCluster")["spec"]
    assert dropped["kubernetesConfig"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Delete",
        "whenScaled": "Retain",
    }
    assert dropped["storage"]["keepAfterDelete"] is False
