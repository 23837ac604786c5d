"""The child cache's index, without a server: objects land under their platform, move when their label
changes, leave when deleted; they are kept without managedFields (but for HPAs) and come back whole
otherwise; and only changes after a kind's first list are reported."""

from __future__ import annotations

import json
import threading
import zlib
from typing import Any

from walletplatform.controller import children
from walletplatform.render import labels

DEPLOYMENT = ("apps/v1", "Deployment")
HPA = ("autoscaling/v2", "HorizontalPodAutoscaler")


class Listed:
    """An informer's only part the cache reads: whether its first list is done."""

    def __init__(self, synced: bool) -> None:
        self.synced = threading.Event()
        if synced:
            self.synced.set()


def child(kind: tuple[str, str], name: str, platform: str) -> dict[str, Any]:
    return {
        "apiVersion": kind[0],
        "kind": kind[1],
        "metadata": {
            "name": name,
            "namespace": "ns",
            "labels": {labels.PLATFORM_LABEL: platform},
            "managedFields": [{"manager": "wallet-scaler", "fieldsV1": {"f:spec": {"f:minReplicas": {}}}}],
        },
        "spec": {"replicas": 2},
    }


def cache(synced: bool) -> tuple[children.ChildCache, list[tuple[str, str]]]:
    changes: list[tuple[str, str]] = []
    made = children.ChildCache(None, None, lambda ns, name: changes.append((ns, name)))  # type: ignore[arg-type]
    made.informers = {DEPLOYMENT: [Listed(synced)], HPA: [Listed(synced)]}  # type: ignore[list-item]
    return made, changes


def test_children_are_indexed_by_platform_and_move_with_their_label() -> None:
    made, changes = cache(synced=True)
    deployment = child(DEPLOYMENT, "a-api", "a")
    made._changed(DEPLOYMENT, ("ns", "a-api"), None, deployment)
    stored = made.children("ns", "a")[("apps/v1", "Deployment", "a-api")]
    assert stored["spec"] == {"replicas": 2} and "managedFields" not in stored["metadata"]
    relabelled = child(DEPLOYMENT, "a-api", "b")
    made._changed(DEPLOYMENT, ("ns", "a-api"), "a", relabelled)
    assert made.children("ns", "a") == {} and list(made.children("ns", "b")) == [("apps/v1", "Deployment", "a-api")]
    made._changed(DEPLOYMENT, ("ns", "a-api"), "b", None)
    assert made.children("ns", "b") == {}
    assert changes == [("ns", "a"), ("ns", "a"), ("ns", "b"), ("ns", "b")]  # each platform touched, once per change


def test_hpas_keep_their_managed_fields_and_the_first_list_is_not_a_change() -> None:
    made, changes = cache(synced=False)
    made._changed(HPA, ("ns", "a-api"), None, child(HPA, "a-api", "a"))
    stored = made.children("ns", "a")[("autoscaling/v2", "HorizontalPodAutoscaler", "a-api")]
    assert stored["metadata"]["managedFields"][0]["manager"] == "wallet-scaler"
    assert changes == []


def test_a_status_change_reconciles_only_for_the_kinds_whose_status_the_platform_reads() -> None:
    """The informer tells the cache whether a change counts: an HPA's status moves at every controller
    sync (no reconcile), a Deployment's readiness is the platform's (a reconcile), a spec edit of
    either is drift (a reconcile); every version is still stored."""
    made, changes = cache(synced=True)
    seen: list[tuple[tuple[str, str], bool]] = []

    def changed(kind: tuple[str, str], where: tuple[str, str], old: str | None, new: Any, counts: bool = True) -> None:
        seen.append((kind, counts))
        made._changed(kind, where, old, new, counts)

    for kind in (HPA, DEPLOYMENT):
        informer = children.Informer(None, kind, "ns", None, platform_of=children._platform, changed=changed)  # type: ignore[arg-type]
        obj = child(kind, "a-api", "a")
        informer._update({**obj, "metadata": {**obj["metadata"], "resourceVersion": "1"}})
        informer._update({**obj, "metadata": {**obj["metadata"], "resourceVersion": "2"}, "status": {"x": 1}})
        informer._update({**obj, "metadata": {**obj["metadata"], "resourceVersion": "3"}, "spec": {"replicas": 5}})
    assert seen == [(HPA, True), (HPA, False), (HPA, True), (DEPLOYMENT, True), (DEPLOYMENT, True), (DEPLOYMENT, True)]
    assert changes.count(("ns", "a")) == 5
    assert made.children("ns", "a")[("autoscaling/v2", "HorizontalPodAutoscaler", "a-api")]["spec"] == {"replicas": 5}


def test_platforms_are_kept_whole_but_packed_and_their_changes_are_left_to_kopf() -> None:
    made, changes = cache(synced=True)
    meta = {"name": "a", "namespace": "ns", "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]}
    body = {"apiVersion": children.PLATFORM[0], "kind": "WalletPlatform", "metadata": meta}
    made._changed(children.PLATFORM, ("ns", "a"), None, {**body, "spec": {"environment": "dev"}})
    made._changed(children.PLATFORM, ("ns", "b"), None, {**body, "metadata": {"name": "b", "namespace": "ns"}})
    assert made.platform("ns", "a") == {
        **body,
        "metadata": {"name": "a", "namespace": "ns"},  # without managedFields: the reconcile never reads them
        "spec": {"environment": "dev"},
    }
    assert all(isinstance(blob, bytes) for blob in made._bodies[children.PLATFORM].values())
    assert made.platform_keys() == [("ns", "a"), ("ns", "b")]
    made._changed(children.PLATFORM, ("ns", "a"), "", None)
    assert made.platform("ns", "a") is None and made.platform_keys() == [("ns", "b")]
    assert changes == []  # a platform's own change is Kopf's to handle, not drift


def test_a_policy_is_kept_packed_and_its_change_reconciles_the_platforms_it_names_before_and_after() -> None:
    made, changes = cache(synced=True)
    made.informers[children.POLICY] = [Listed(True)]  # type: ignore[list-item]
    policy = {
        "apiVersion": children.POLICY[0],
        "kind": "ScalingPolicy",
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"platformRef": "a"},
    }
    made._changed(children.POLICY, ("ns", "p"), None, policy)
    made._changed(children.POLICY, ("ns", "p"), "a", {**policy, "spec": {"platformRef": "b"}})
    assert made.policies("ns") == [{**policy, "spec": {"platformRef": "b"}}] and made.policies("other") == []
    assert changes == [("ns", "a"), ("ns", "a"), ("ns", "b")]
    made._changed(children.POLICY, ("ns", "p"), "b", None)
    assert made.policies() == [] and changes[-1] == ("ns", "b")


def test_children_of_one_kind_are_packed_against_the_first_and_come_back_whole() -> None:
    packer = children.Packer()
    first, second = child(DEPLOYMENT, "a-api", "a"), child(DEPLOYMENT, "b-api", "b")
    for obj in (first, second):
        obj["spec"] = {"replicas": 2, "template": {"spec": {"containers": [{"name": "api", "image": "wallet:0.1"}]}}}
    packer.pack(first)
    blob = packer.pack(second)
    assert packer.unpack(DEPLOYMENT, blob) == {
        **second,
        "metadata": {k: v for k, v in second["metadata"].items() if k != "managedFields"},
    }
    alone = zlib.compress(json.dumps(packer.unpack(DEPLOYMENT, blob), separators=(",", ":")).encode(), 6)
    assert len(blob) < len(alone) / 2  # only what differs from the kind's first object
