"""`walletctl status` / `kubectl wallet status`: the tree drawn from the objects as the API returns them."""

from __future__ import annotations

from walletplatform.cli import status


def test_the_tree_shows_services_postgres_redis_and_what_ready_waits_for() -> None:
    platform = {
        "metadata": {"name": "wallet-dev", "namespace": "wallet-dev"},
        "spec": {"services": [{"name": "api-gateway"}, {"name": "transaction"}]},
        "status": {
            "conditions": [{"type": "Ready", "status": "False", "reason": "WaitingForDataTier"}],
            "components": {
                "redis": {"kind": "RedisCluster", "ready": False, "message": "RedisCluster is initializing leaders"},
                "api-gateway": {"kind": "Deployment", "ready": True, "message": "1/1 available"},
            },
        },
    }
    seen = status.Observed(
        platform=platform,
        hpas={
            "wallet-dev-transaction": {"spec": {"minReplicas": 3, "maxReplicas": 20}, "status": {"desiredReplicas": 4}}
        },
        deployments={"wallet-dev-transaction": {"status": {"replicas": 4, "readyReplicas": 3}}},
        postgres={
            "status": {
                "phase": "Cluster in healthy state",
                "currentPrimary": "wallet-dev-pg-2",
                "instanceNames": ["wallet-dev-pg-1", "wallet-dev-pg-2", "wallet-dev-pg-3"],
                "instancesStatus": {"healthy": ["wallet-dev-pg-1", "wallet-dev-pg-2"]},
            }
        },
        pooler={"metadata": {"name": "wallet-dev-pg-pooler-rw"}, "status": {"replicas": 1, "readyReplicas": 1}},
        redis={
            "spec": {"redisLeader": {"replicas": 3}, "redisFollower": {"replicas": 0}},
            "status": {"state": "Initializing"},
        },
        events=[
            {"type": "Normal", "reason": "Applied", "message": "53 objects", "lastTimestamp": "2026-11-30T10:00:00Z"},
            {"type": "Warning", "reason": "Waiting", "message": "redis", "lastTimestamp": "2026-11-30T10:01:00Z"},
        ],
    )
    tree = status.render_tree(seen)
    lines = tree.splitlines()
    assert lines[0] == "WalletPlatform wallet-dev/wallet-dev  Ready=False (WaitingForDataTier)"
    assert "│  ├─ api-gateway   0/0 ready   floor -   HPA desired - (max -)" in lines
    assert "│  └─ transaction   3/4 ready   floor 3   HPA desired 4 (max 20)" in lines
    assert "├─ postgres  Cluster wallet-dev-pg: Cluster in healthy state" in lines
    assert "│  ├─ wallet-dev-pg-2          primary  healthy" in lines
    assert "│  ├─ wallet-dev-pg-3          replica  not healthy" in lines
    assert "│  └─ pooler wallet-dev-pg-pooler-rw  1/1 ready" in lines
    assert "│  ├─ leaders    0/3 ready" in lines and "│  └─ followers  0/0 ready" in lines
    assert "├─ waiting on  redis: RedisCluster is initializing leaders" in lines
    assert lines[-1] == "   └─ Warning Waiting: redis"


def test_without_the_data_tiers_operators_the_tree_says_so() -> None:
    platform = {"metadata": {"name": "p", "namespace": "n"}, "spec": {"services": []}}
    tree = status.render_tree(status.Observed(platform, {}, {}, None, None, None, []))
    assert "Cluster p-pg: no status (is CloudNativePG running?)" in tree
    assert "RedisCluster p-redis: no status (is redis-operator running?)" in tree
    assert "no status yet" in tree.splitlines()[0] and tree.endswith("   └─ none\n")
