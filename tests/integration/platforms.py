"""Helpers for tests that drive the operator: apply an example platform into a test namespace, wait
for conditions, edit children by hand. The data tier's status is never written here: only the real
CloudNativePG and redis-operator write it (tests/integration/test_data_tier.py)."""

from __future__ import annotations

import copy
import pathlib
from collections.abc import Callable
from typing import Any

from walletplatform.clients import kube
from walletplatform.devenv import processes

from tests.conftest import load

API = "wallet.platform.io/v1alpha1"
PG = ("postgresql.cnpg.io/v1", "Cluster")
REDIS = ("redis.redis.opstreelabs.in/v1beta2", "RedisCluster")


def platform_doc(path: pathlib.Path, namespace: str, name: str | None = None) -> dict[str, Any]:
    doc = copy.deepcopy(load(path))
    doc["metadata"] = {"name": name or doc["metadata"]["name"], "namespace": namespace}  # type: ignore[index]
    return doc


def apply_platform(client: kube.Kube, doc: dict[str, Any]) -> dict[str, Any]:
    return client.apply(doc, "wallet-tests")


def get_platform(client: kube.Kube, namespace: str, name: str) -> dict[str, Any]:
    body = client.get(API, "WalletPlatform", name, namespace)
    assert body is not None
    return body


def hand_edit(
    client: kube.Kube, api_version: str, kind: str, name: str, namespace: str, change: Callable[[dict[str, Any]], None]
) -> None:
    """Edit a live object the way ``kubectl edit`` does (read, change, replace), reading it again when a
    controller updated it in between (409 Conflict), as anyone editing by hand would."""
    for _ in range(10):
        obj = client.get(api_version, kind, name, namespace)
        assert obj is not None, f"{kind} {namespace}/{name} does not exist"
        change(obj)
        try:
            client.replace(obj)
            return
        except kube.ApiError as exc:
            if exc.status != 409:
                raise
    raise AssertionError(f"{kind} {namespace}/{name}: still conflicting after 10 edits")


def condition(body: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in (body.get("status") or {}).get("conditions", []) if c["type"] == kind), None)


def wait_condition(
    client: kube.Kube, namespace: str, name: str, kind: str, status: str, reason: str | None = None, timeout: float = 60
) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def check() -> bool:
        c = condition(get_platform(client, namespace, name), kind)
        found.update(c or {})
        return c is not None and c["status"] == status and (reason is None or c["reason"] == reason)

    processes.wait_until(check, timeout, f"{kind}={status} {reason or ''} on {namespace}/{name} (last: {found})")
    return found


def children(
    client: kube.Kube, namespace: str, platform: str, kinds: tuple[tuple[str, str], ...]
) -> list[dict[str, Any]]:
    return [
        obj
        for api_version, kind in kinds
        for obj in client.list(api_version, kind, namespace, f"wallet.platform.io/platform={platform}")
    ]
