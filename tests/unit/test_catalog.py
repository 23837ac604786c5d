"""The catalog holds the performance guide's defaults, and overrides merge onto them."""

from __future__ import annotations

import pytest
from walletplatform import catalog
from walletplatform.models import platform

GUIDE = [
    # name, min, max, cpu%, mem%, p95 ms, throughput
    ("transaction", 3, 20, 70, 80, 200, 15000),
    ("account", 2, 15, 75, 85, 50, 10000),
    ("user", 2, 10, 80, 85, 100, 5000),
    ("payment", 2, 8, 75, 80, 500, 5000),
    ("notification", 1, 12, 80, 85, 1000, 20000),
]


def test_catalog_has_the_seven_services(cat: catalog.Catalog) -> None:
    assert set(cat) == {"user", "account", "transaction", "payment", "notification", "compliance", "api-gateway"}


@pytest.mark.parametrize(("name", "low", "high", "cpu", "mem", "p95", "throughput"), GUIDE, ids=[g[0] for g in GUIDE])
def test_performance_guide_defaults(
    cat: catalog.Catalog, name: str, low: int, high: int, cpu: int, mem: int, p95: int, throughput: int
) -> None:
    svc = cat[name]
    assert (svc.min_replicas, svc.max_replicas) == (low, high)
    assert (svc.targets.cpu_utilization, svc.targets.memory_utilization) == (cpu, mem)
    assert (svc.slo.p95_latency_ms, svc.slo.throughput) == (p95, throughput)


def test_transaction_behaviour_and_queue_metric(cat: catalog.Catalog) -> None:
    svc = cat["transaction"]
    up, down = svc.behavior.scale_up, svc.behavior.scale_down
    assert up.stabilization_window_seconds == 30 and up.select_policy == "Max"
    assert {(p.type, p.value, p.period_seconds) for p in up.policies} == {("Percent", 50, 30), ("Pods", 5, 30)}
    assert down.stabilization_window_seconds == 300
    assert [(p.type, p.value, p.period_seconds) for p in down.policies] == [("Percent", 10, 60)]
    assert [(m.name, m.average_value) for m in svc.extra_metrics] == [("transaction_queue_depth", "10")]


def test_override_merges_onto_defaults(cat: catalog.Catalog) -> None:
    override = platform.ServiceOverride.model_validate(
        {"name": "transaction", "maxReplicas": 30, "env": [{"name": "LOG_LEVEL", "value": "debug"}]}
    )
    merged = catalog.merge_service(cat["transaction"], override)
    assert merged.max_replicas == 30
    assert merged.min_replicas == 3
    assert merged.behavior == cat["transaction"].behavior
    assert [e.name for e in merged.env] == ["LOG_LEVEL"]


def test_vpa_per_service_overrides_platform_default(cat: catalog.Catalog) -> None:
    spec = platform.WalletPlatformSpec.model_validate(
        {"vpa": True, "services": [{"name": "user"}, {"name": "account", "vpa": False}]}
    )
    resolved = catalog.resolve("p", "ns", spec, cat)
    assert dict(resolved.vpa) == {"user": True, "account": False}
