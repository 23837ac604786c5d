"""Postgres as a CloudNativePG ``Cluster`` (one primary, N replicas) and, when enabled, a ``Pooler``.

Replication, failover and credentials are CloudNativePG's job: nothing here hand-rolls them, and the
application credentials live in the ``<cluster>-app`` Secret that CloudNativePG generates."""

from __future__ import annotations

from walletplatform.catalog import ResolvedPlatform
from walletplatform.models import common
from walletplatform.models import platform as platform_model
from walletplatform.render import labels

MiB = 1024 * 1024
GiB = 1024 * MiB
# The project's images, built from Debian's packages (images/postgresql, images/pgbouncer); the tag of
# the PostgreSQL image is the major version, which is how CloudNativePG learns it.
IMAGE = "ghcr.io/wallet-platform/postgresql"
PGBOUNCER_IMAGE = "ghcr.io/wallet-platform/pgbouncer:1.24.1"
# A normal delete of the primary starts with a smart shutdown, which waits for every client to
# disconnect, up to CloudNativePG's default of 180 s; PgBouncer (and any application pool) never does,
# and the new primary is only elected once the old one has stopped. Measured here with the real
# operators under write load through the pooler: writes stopped for about 186 s with the default,
# 6.2 s with 5 s, and 2.3 s with 1 s (a writable new primary 3.6 s after the delete, no acknowledged
# transfer lost). The fast shutdown that follows still streams all WAL to the replicas first.
SMART_SHUTDOWN_SECONDS = 1
# PgBouncer waits server_login_retry (15 s by default) after a failed connect before it tries the
# server again: after a failover that was 16 s of refused writes once the new primary already served.
POOLER_PARAMETERS = {"server_login_retry": "1", "server_connect_timeout": "5"}


def _mb(value: float) -> str:
    return f"{max(1, int(value // MiB))}MB"


def derive_max_connections(spec: platform_model.Postgres) -> int:
    """Explicit value, else 100 per GiB of memory, between 100 and 1000."""
    if spec.max_connections is not None:
        return spec.max_connections
    gib = common.parse_quantity(spec.memory) / (1024 * MiB)
    return max(100, min(1000, int(gib * 100)))


def derive_wal_sizes(storage: str) -> tuple[str, str]:
    """(min_wal_size, max_wal_size) from the data volume: WAL may grow to a quarter of it (between 64 MB
    and the 4 GB a large volume gets), recycled down to a quarter of that. Fixed 1GB/4GB sizes could
    fill a 5Gi volume with WAL alone."""
    max_wal = min(4 * GiB, max(64 * MiB, common.parse_quantity(storage) / 4))
    return _mb(max_wal / 4), _mb(max_wal)


def derive_parameters(spec: platform_model.Postgres) -> dict[str, str]:
    """postgresql.conf tuning derived from the instance memory (pgtune's rules for an OLTP web app) and
    the WAL sizes from the data volume."""
    memory = common.parse_quantity(spec.memory)
    min_wal, max_wal = derive_wal_sizes(spec.storage.size)
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
        "min_wal_size": min_wal,
        "max_wal_size": max_wal,
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
    spec: dict[str, common.JsonValue] = {
        "instances": pg.instances,
        "imageName": pg.image or f"{IMAGE}:{pg.version}",
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
        # CloudNativePG copies only its own cnpg.io/* labels onto the pods; these make the instance
        # pods selectable by the platform's labels like every other pod of the platform.
        "inheritedMetadata": {"labels": dict(labels.platform_labels(platform.name, "postgres"))},
    }
    spec["smartShutdownTimeout"] = SMART_SHUTDOWN_SECONDS
    return {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "metadata": meta, "spec": spec}


def render_pod_monitor(platform: ResolvedPlatform) -> common.Manifest | None:
    """The instances' metrics (port ``metrics``, 9187) as a PodMonitor: CloudNativePG deprecated
    ``spec.monitoring.enablePodMonitor`` in favour of a PodMonitor of one's own."""
    if not platform.spec.monitoring.service_monitor:
        return None
    cluster = labels.postgres_name(platform.name)
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        # Not the cluster's own name: CloudNativePG deletes a PodMonitor of that name whenever its own
        # is disabled, and the two operators recreated and deleted it at every resync (seen on the node).
        "metadata": labels.metadata(f"{cluster}-metrics", platform.namespace, platform.name, "postgres"),
        "spec": {
            "selector": {"matchLabels": {"cnpg.io/cluster": cluster}},
            "podMetricsEndpoints": [{"port": "metrics"}],
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
            # CloudNativePG 1.27 has no setting for the default PgBouncer image, so the template names it;
            # the labels make the PgBouncer pods selectable by the platform's labels.
            "template": {
                "metadata": {"labels": dict(labels.platform_labels(platform.name, "pgbouncer"))},
                "spec": {"containers": [{"name": "pgbouncer", "image": pooler.image or PGBOUNCER_IMAGE}]},
            },
            "pgbouncer": {
                "poolMode": pooler.pool_mode.value,
                "parameters": {
                    "default_pool_size": str(pooler.default_pool_size),
                    "max_client_conn": "1000",
                    **POOLER_PARAMETERS,
                },
            },
        },
    }
