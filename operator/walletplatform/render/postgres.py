"""Postgres as a CloudNativePG ``Cluster`` (one primary, N replicas) and, when enabled, a ``Pooler``.

Replication, failover and credentials are CloudNativePG's job: nothing here hand-rolls them, and the
application credentials live in the ``<cluster>-app`` Secret that CloudNativePG generates."""

from __future__ import annotations

from walletplatform.catalog import ResolvedPlatform
from walletplatform.models import common
from walletplatform.models import platform as platform_model
from walletplatform.render import labels

MiB = 1024 * 1024
IMAGE = "ghcr.io/cloudnative-pg/postgresql"


def _mb(value: float) -> str:
    return f"{max(1, int(value // MiB))}MB"


def derive_max_connections(spec: platform_model.Postgres) -> int:
    """Explicit value, else 100 per GiB of memory, between 100 and 1000."""
    if spec.max_connections is not None:
        return spec.max_connections
    gib = common.parse_quantity(spec.memory) / (1024 * MiB)
    return max(100, min(1000, int(gib * 100)))


def derive_parameters(spec: platform_model.Postgres) -> dict[str, str]:
    """postgresql.conf tuning derived from the instance memory (pgtune's rules for an OLTP web app)."""
    memory = common.parse_quantity(spec.memory)
    connections = derive_max_connections(spec)
    shared_buffers = memory * 0.25
    work_mem_kb = max(4096, int((memory - shared_buffers) / (connections * 3) // 1024))
    return {
        "max_connections": str(connections),
        "shared_buffers": _mb(shared_buffers),
        "effective_cache_size": _mb(memory * 0.75),
        "work_mem": f"{work_mem_kb}kB",
        "maintenance_work_mem": _mb(min(memory / 16, 2048 * MiB)),
        "wal_buffers": _mb(min(16 * MiB, max(MiB, shared_buffers / 32))),
        "min_wal_size": "1GB",
        "max_wal_size": "4GB",
        "checkpoint_completion_target": "0.9",
        "random_page_cost": "1.1",
        "effective_io_concurrency": "200",
        "default_statistics_target": "100",
    }


def render_cluster(platform: ResolvedPlatform) -> common.Manifest:
    pg = platform.spec.postgres
    name = labels.postgres_name(platform.name)
    storage: dict[str, common.JsonValue] = {"size": pg.storage.size}
    if pg.storage.storage_class:
        storage["storageClass"] = pg.storage.storage_class
    postgresql: dict[str, common.JsonValue] = {"parameters": dict(derive_parameters(pg))}
    if pg.synchronous_replicas:
        postgresql["synchronous"] = {"method": "any", "number": pg.synchronous_replicas, "dataDurability": "required"}
    meta = labels.data_metadata(name, platform.namespace, platform.name, "postgres", platform.spec.retain_data)
    return {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": meta,
        "spec": {
            "instances": pg.instances,
            "imageName": f"{IMAGE}:{pg.version}",
            "primaryUpdateStrategy": "unsupervised",
            "enableSuperuserAccess": False,
            "storage": storage,
            "resources": {
                "requests": {"cpu": pg.cpu, "memory": pg.memory},
                "limits": {"memory": pg.memory},
            },
            "postgresql": postgresql,
            "bootstrap": {"initdb": {"database": pg.database, "owner": pg.owner}},
            "affinity": {"enablePodAntiAffinity": True, "topologyKey": "kubernetes.io/hostname"},
            "monitoring": {"enablePodMonitor": platform.spec.monitoring.service_monitor},
        },
    }


def render_pooler(platform: ResolvedPlatform) -> common.Manifest | None:
    pooler = platform.spec.postgres.pooler
    if not pooler.enabled:
        return None
    cluster = labels.postgres_name(platform.name)
    return {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Pooler",
        "metadata": labels.metadata(f"{cluster}-pooler-rw", platform.namespace, platform.name, "postgres"),
        "spec": {
            "cluster": {"name": cluster},
            "instances": pooler.instances,
            "type": "rw",
            "pgbouncer": {
                "poolMode": pooler.pool_mode.value,
                "parameters": {"default_pool_size": str(pooler.default_pool_size), "max_client_conn": "1000"},
            },
        },
    }
