"""The pure reconcile layer: when to write, what to prune, the status and its messages, and the
operator's RBAC derived from the renderer."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from walletplatform import catalog, install, render
from walletplatform.models import platform
from walletplatform.reconcile import compare, status

from tests.conftest import EXAMPLES, PROD_EXAMPLE, resolve_file

OWNER = compare.Owner("wallet-prod", "uid-1")
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
def objects(cat: catalog.Catalog) -> list[Any]:
    return render.render_platform(resolve_file(PROD_EXAMPLE, cat))


def live_copy(obj: Any) -> dict[str, Any]:
    """What the server returns: our fields plus defaults and other managers' fields."""
    live: dict[str, Any] = copy.deepcopy(obj)
    live["metadata"]["resourceVersion"] = "42"
    live["metadata"]["labels"]["added-by-someone"] = "x"
    live.setdefault("status", {})["observedGeneration"] = 1
    return live


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_rendered_kind_is_listed_for_pruning(path: Any, cat: catalog.Catalog) -> None:
    kinds = {(o["apiVersion"], o["kind"]) for o in render.render_platform(resolve_file(path, cat))}
    assert kinds <= set(render.KINDS)


def test_missing_changed_drifted_and_up_to_date(objects: list[Any]) -> None:
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    desired = compare.render_owned(deployment, OWNER)
    assert compare.decide_write(desired, None) == (True, "missing")
    live = live_copy(desired)
    assert compare.decide_write(desired, live) == (False, "up to date")

    edited = copy.deepcopy(live)
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = "example.org/other:1"
    verdict = compare.decide_write(desired, edited)
    assert verdict.write and verdict.reason == "drifted at .spec.template.spec.containers[0].image"

    changed = copy.deepcopy(deployment)
    del changed["spec"]["template"]["spec"]["containers"][0]["env"]  # a removal a subset check cannot see
    assert compare.decide_write(compare.render_owned(changed, OWNER), live) == (True, "spec changed")


def test_quantities_compare_by_value_but_other_strings_exactly() -> None:
    assert compare.find_difference({"resources": {"cpu": "1000m"}}, {"resources": {"cpu": "1"}}) is None
    assert compare.find_difference({"memory": "1Gi"}, {"memory": "1024Mi"}) is None
    assert compare.find_difference({"value": "1000m"}, {"value": "1"}) == ".value"
    assert compare.find_difference({"ports": [1, 2]}, {"ports": [1]}) == ".ports"


def test_retained_data_gets_no_owner_and_others_get_exactly_one(objects: list[Any]) -> None:
    for obj in objects:
        owned = compare.render_owned(obj, OWNER)
        refs = owned["metadata"].get("ownerReferences")
        if obj["kind"] in {"Cluster", "RedisCluster"} or obj["metadata"]["name"].endswith(
            ("-redis-config", "-redis-auth")
        ):
            assert refs is None
        else:
            assert refs == [OWNER.reference()]
        assert compare.HASH_ANNOTATION in owned["metadata"]["annotations"]


def test_prune_selects_only_our_children_that_are_no_longer_rendered(objects: list[Any]) -> None:
    owned = [live_copy(compare.render_owned(o, OWNER)) for o in objects]
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    foreign = live_copy(compare.render_owned(deployment, compare.Owner("other", "uid-2")))
    foreign["metadata"]["name"] = "someone-elses"
    dropped = {compare.object_key(deployment), compare.object_key(objects[0])}  # objects[0] is retained data
    assert objects[0]["kind"] == "ConfigMap" and compare.retained(objects[0])
    wanted = {compare.object_key(o) for o in objects} - dropped
    pruned = compare.select_prunable([*owned, foreign], wanted, OWNER)
    assert [compare.object_key(o) for o in pruned] == [compare.object_key(deployment)]


def test_merge_patch_nulls_removed_keys_and_keeps_equal_ones() -> None:
    old = {"components": {"a": 1, "b": 2}, "x": [1], "same": 1}
    new = {"components": {"a": 1}, "x": [2], "same": 1}
    assert compare.render_merge_patch(old, new) == {"components": {"b": None}, "x": [2]}


def observed(deployments: dict[str, Any], pg: Any = None, redis: Any = None) -> status.Observed:
    return status.Observed(deployments=deployments, postgres=pg, redis=redis)


def test_field_managers_reads_who_owns_a_field_from_managed_fields() -> None:
    hpa = {
        "metadata": {
            "managedFields": [
                {"manager": "wallet-operator", "operation": "Apply", "fieldsV1": {"f:spec": {"f:maxReplicas": {}}}},
                {"manager": "wallet-scaler", "operation": "Apply", "fieldsV1": {"f:spec": {"f:minReplicas": {}}}},
                {"manager": "kube-controller-manager", "subresource": "status", "fieldsV1": {"f:status": {}}},
                {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:spec": {"f:minReplicas": {}}}},
            ]
        }
    }
    assert compare.field_managers(hpa, "spec", "minReplicas") == {"wallet-scaler", "kubectl-edit"}
    assert compare.field_managers(hpa, "spec", "maxReplicas") == {"wallet-operator"}
    assert compare.field_managers(hpa, "spec", "behavior") == set()
    assert compare.field_managers({"metadata": {}}, "spec", "minReplicas") == set()


def test_status_names_the_blocking_component_and_why(cat: catalog.Catalog) -> None:
    resolved = resolve_file(PROD_EXAMPLE, cat)
    available = {n: {"status": {"availableReplicas": 2, "replicas": 2}} for n in resolved.names}
    pg = {"status": {"phase": "Setting up primary", "instances": 3, "readyInstances": 0}}
    redis = {"status": {"state": "Ready", "readyLeaderReplicas": 3, "readyFollowerReplicas": 3}}
    outcome = status.Outcome(55)
    result = status.render_status(
        resolved, observed(available, pg, redis), outcome, generation=3, previous=None, now=NOW
    )
    ready = next(c for c in result.conditions if c.type == "Ready")
    assert ready.status == platform.ConditionStatus.FALSE and ready.reason == "WaitingForDataTier"
    assert ready.message == "waiting for: postgres (Setting up primary)"
    assert ready.observed_generation == 3 and ready.last_transition_time == NOW
    assert result.services_ready == f"{len(resolved.names)}/{len(resolved.names)}"

    pg_ready = {"status": {"conditions": [{"type": "Ready", "status": "True"}], "instances": 3, "readyInstances": 3}}
    later = status.render_status(
        resolved, observed(available, pg_ready, redis), outcome, generation=3, previous=result, now=NOW + timedelta(1)
    )
    now_ready = next(c for c in later.conditions if c.type == "Ready")
    assert (now_ready.status, now_ready.reason, now_ready.last_transition_time) == (
        platform.ConditionStatus.TRUE,
        "AllComponentsReady",
        NOW + timedelta(1),
    )
    reconciled = next(c for c in later.conditions if c.type == "Reconciled")
    assert reconciled.last_transition_time == NOW, "unchanged conditions keep their transition time"

    again = status.render_status(
        resolved, observed(available, pg_ready, redis), outcome, generation=3, previous=later, now=NOW + timedelta(2)
    )
    assert again == later, "a pass that changed nothing renders the same status (so nothing is written)"


def test_errors_are_degraded_and_kept_after_recovery(cat: catalog.Catalog) -> None:
    resolved = resolve_file(PROD_EXAMPLE, cat)
    failed = status.render_status(
        resolved,
        observed({}),
        status.Outcome(55, "Deployment x: forbidden", "ApplyFailed"),
        generation=1,
        previous=None,
        now=NOW,
    )
    degraded = next(c for c in failed.conditions if c.type == "Degraded")
    assert (degraded.status, degraded.reason) == (platform.ConditionStatus.TRUE, "ApplyFailed")
    assert (
        "Deployment wallet-prod-user does not exist" in next(c for c in failed.conditions if c.type == "Ready").message
    )
    recovered = status.render_status(resolved, observed({}), status.Outcome(55), generation=1, previous=failed, now=NOW)
    assert recovered.last_error == "Deployment x: forbidden"
    assert next(c for c in recovered.conditions if c.type == "Degraded").status == platform.ConditionStatus.FALSE


def test_rbac_lists_exactly_what_the_operator_touches() -> None:
    objects = install.render_rbac("wallet-system")
    role = next(o for o in objects if o["kind"] == "ClusterRole")
    rules = role["rules"]
    assert isinstance(rules, list)
    assert "'*'" not in str(rules)
    # Secrets only in the core group's rule of children (the generated Redis password), never more.
    with_secrets = [rule for rule in rules if "secrets" in rule["resources"]]  # type: ignore[index,operator]
    assert len(with_secrets) == 1 and with_secrets[0]["apiGroups"] == [""]  # type: ignore[index,call-overload]
    assert with_secrets[0]["verbs"] == install.CHILD_VERBS  # type: ignore[index,call-overload]
    resources = {r for rule in rules for r in rule["resources"]}  # type: ignore[index,union-attr]
    assert {install.PLURALS[kind] for _, kind in render.KINDS} <= resources
    assert "walletplatforms/status" in resources
