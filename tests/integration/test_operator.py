"""The operator as a real process (the chart's ServiceAccount and RBAC, never admin) against the real
control plane: apply, change, prune, drift, deletion with retained data, invalid specs, no-op writes
(counted in the API server's audit log), crash and API-server restart, and secrets kept out of
status, events and logs."""

from __future__ import annotations

import time
from typing import Any

import pytest
from walletplatform import catalog, render
from walletplatform.controller import settings
from walletplatform.devenv import operator as operator_env
from walletplatform.devenv import processes
from walletplatform.models import resources
from walletplatform.reconcile import compare

from tests.conftest import DEV_EXAMPLE, PROD_EXAMPLE
from tests.integration import platforms
from tests.integration.conftest import OPERATOR_ENV, OPERATOR_USER, Cluster

pytestmark = pytest.mark.integration
WAIT = 60


def rendered_keys(doc: dict[str, Any], cat: catalog.Catalog) -> set[tuple[str, str, str]]:
    parsed = resources.parse_document(doc)
    assert isinstance(parsed, resources.WalletPlatform)
    resolved = catalog.resolve(parsed.metadata.name, parsed.metadata.namespace, parsed.spec, cat)
    return {compare.object_key(obj) for obj in render.render_platform(resolved)}


def live_keys(cluster: Cluster, namespace: str, name: str) -> set[tuple[str, str, str]]:
    return {compare.object_key(o) for o in platforms.children(cluster.client, namespace, name, render.KINDS)}


def wait_keys(cluster: Cluster, namespace: str, name: str, expected: set[tuple[str, str, str]]) -> None:
    processes.wait_until(
        lambda: live_keys(cluster, namespace, name) == expected,
        WAIT,
        f"children of {name} == rendered (missing {expected - live_keys(cluster, namespace, name)}, "
        f"extra {live_keys(cluster, namespace, name) - expected})",
    )


def converge(cluster: Cluster, namespace: str, doc: dict[str, Any], cat: catalog.Catalog) -> dict[str, Any]:
    """Apply, wait for every child and for the status that says what Ready waits for. No data-tier
    operator runs against this API server, so that is the data tier (test_data_tier runs the real ones)."""
    name = doc["metadata"]["name"]
    platforms.apply_platform(cluster.client, doc)
    wait_keys(cluster, namespace, name, rendered_keys(doc, cat))
    return platforms.wait_condition(cluster.client, namespace, name, "Ready", "False", "WaitingForDataTier", WAIT)


def operator_writes(cluster: Cluster, namespace: str | None = None) -> list[dict[str, Any]]:
    """Write requests the operator's ServiceAccount made (leases excluded: that is leader election)."""
    assert cluster.plane is not None
    return [
        w
        for w in cluster.plane.write_requests(OPERATOR_USER)
        if w["objectRef"].get("resource") != "leases"
        and (namespace is None or w["objectRef"].get("namespace") == namespace)
    ]


def test_platform_is_applied_with_owners_and_status_names_the_blocker(
    cluster: Cluster, namespace: str, operator: operator_env.Operator, cat: catalog.Catalog
) -> None:
    doc = platforms.platform_doc(DEV_EXAMPLE, namespace)
    name = doc["metadata"]["name"]
    platforms.apply_platform(cluster.client, doc)
    wait_keys(cluster, namespace, name, rendered_keys(doc, cat))
    ready = platforms.wait_condition(cluster.client, namespace, name, "Ready", "False", "WaitingForDataTier")
    assert f"Cluster {name}-pg" in ready["message"] and "CloudNativePG" in ready["message"]

    body = platforms.get_platform(cluster.client, namespace, name)
    uid = body["metadata"]["uid"]
    for obj in platforms.children(cluster.client, namespace, name, render.KINDS):
        refs = obj["metadata"].get("ownerReferences") or []
        if obj["kind"] in {"Cluster", "RedisCluster"} or obj["metadata"]["name"].endswith(
            ("-redis-config", "-redis-auth")
        ):
            assert refs == [], f"retained {obj['kind']} must not be garbage-collected"
        else:
            assert [r["uid"] for r in refs] == [uid], obj["metadata"]["name"]
    deployments = platforms.children(cluster.client, namespace, name, (("apps/v1", "Deployment"),))
    assert deployments and all("replicas" not in _applied_spec(d) for d in deployments)
    # No ScalingPolicy here: the static floor's one owner is the scaler's manager, for every service
    # (notification's floor of 1 equals the API server's default and is owned all the same).
    hpas = platforms.children(cluster.client, namespace, name, (("autoscaling/v2", "HorizontalPodAutoscaler"),))
    floors = {h["metadata"]["name"]: h["spec"]["minReplicas"] for h in hpas}
    assert floors[f"{name}-notification"] == 1, floors
    assert {h["metadata"]["name"]: compare.field_managers(h, "spec", "minReplicas") for h in hpas} == {
        h: {settings.SCALER_MANAGER} for h in floors
    }
    status = body["status"]
    assert status["postgres"] == "NotReady" and status["servicesReady"].endswith(f"/{len(deployments)}")
    assert sorted(status["retained"]) == [f"Cluster {name}-pg", f"RedisCluster {name}-redis"]

    # No status is written by hand for the data tier: with no CloudNativePG or redis-operator here, the
    # data tier stays what Ready waits for (test_data_tier has the real operators take it to Ready).
    assert "replicas available" in ready["message"]
    reconciled = platforms.condition(platforms.get_platform(cluster.client, namespace, name), "Reconciled")
    assert reconciled is not None and reconciled["status"] == "True"
    assert reconciled["observedGeneration"] == body["metadata"]["generation"]
    events = cluster.client.list("v1", "Event", namespace)
    assert any(e["reason"] == "Applied" and e["involvedObject"]["name"] == name for e in events)


def _applied_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    """The fields wallet-operator owns in a Deployment's spec (server defaults add replicas otherwise)."""
    for entry in deployment["metadata"].get("managedFields") or []:
        if entry["manager"] == "wallet-operator":
            spec: dict[str, Any] = entry["fieldsV1"].get("f:spec", {})
            return {k.removeprefix("f:"): v for k, v in spec.items()}
    raise AssertionError("wallet-operator owns nothing in the Deployment")


def test_spec_changes_are_applied_and_removed_services_pruned(
    cluster: Cluster, namespace: str, operator: operator_env.Operator, cat: catalog.Catalog
) -> None:
    doc = platforms.platform_doc(DEV_EXAMPLE, namespace)
    name = doc["metadata"]["name"]
    converge(cluster, namespace, doc, cat)
    services = doc["spec"]["services"]
    removed = services.pop()["name"]
    services[0]["maxReplicas"] = 9
    doc["spec"]["postgres"]["instances"] = 2
    platforms.apply_platform(cluster.client, doc)
    wait_keys(cluster, namespace, name, rendered_keys(doc, cat))
    assert not any(k[2] == f"{name}-{removed}" for k in live_keys(cluster, namespace, name))
    hpa = cluster.client.get("autoscaling/v2", "HorizontalPodAutoscaler", f"{name}-{services[0]['name']}", namespace)
    assert hpa is not None and hpa["spec"]["maxReplicas"] == 9
    pg = cluster.client.get(*platforms.PG, f"{name}-pg", namespace)
    assert pg is not None and pg["spec"]["instances"] == 2

    services.append({"name": removed})
    platforms.apply_platform(cluster.client, doc)
    wait_keys(cluster, namespace, name, rendered_keys(doc, cat))


def test_deleted_or_edited_children_are_restored_by_the_resync(
    cluster: Cluster, namespace: str, operator: operator_env.Operator, cat: catalog.Catalog
) -> None:
    doc = platforms.platform_doc(DEV_EXAMPLE, namespace)
    name = doc["metadata"]["name"]
    converge(cluster, namespace, doc, cat)
    target = f"{name}-{doc['spec']['services'][0]['name']}"
    original = cluster.client.get("apps/v1", "Deployment", target, namespace)
    assert original is not None
    image = original["spec"]["template"]["spec"]["containers"][0]["image"]
    cluster.client.delete("apps/v1", "Deployment", target, namespace)
    processes.wait_until(
        lambda: (
            (cluster.client.get("apps/v1", "Deployment", target, namespace) or {}).get("metadata", {}).get("uid")
            not in (None, original["metadata"]["uid"])
        ),
        WAIT,
        "deleted Deployment recreated",
    )

    def edit(obj: dict[str, Any]) -> None:
        obj["spec"]["template"]["spec"]["containers"][0]["image"] = "example.org/hand-edited:1"

    platforms.hand_edit(cluster.client, "apps/v1", "Deployment", target, namespace, edit)
    processes.wait_until(
        lambda: (
            (cluster.client.get("apps/v1", "Deployment", target, namespace) or {})["spec"]["template"]["spec"][
                "containers"
            ][0]["image"]
            == image
        ),
        WAIT,
        "hand-edited image restored",
    )


def test_a_noop_resync_sends_zero_writes(
    cluster: Cluster, namespace: str, operator: operator_env.Operator, cat: catalog.Catalog
) -> None:
    doc = platforms.platform_doc(DEV_EXAMPLE, namespace)
    converge(cluster, namespace, doc, cat)
    period = float(OPERATOR_ENV["WALLET_RESYNC_SECONDS"])
    # Settle first: Kopf finishes its bookkeeping after the create handler succeeds (a last annotation
    # patch, sometimes a few seconds later). Then measure three resync passes.
    quiet = {"count": -1, "since": time.monotonic()}

    def pass_writes() -> list[dict[str, Any]]:
        """Every write of the operator, Kopf's annotations on the WalletPlatform included: with no
        data-tier operator here the platform waits for its data tier, and that wait holds no retry (the
        data tier's status is watched instead), so nothing is written while it waits."""
        return operator_writes(cluster, namespace)

    def settled() -> bool:
        count = len(pass_writes())
        if count != quiet["count"]:
            quiet.update(count=count, since=time.monotonic())
        return time.monotonic() - quiet["since"] > 2 * period

    processes.wait_until(settled, 60, "operator writes settle", interval=0.5)
    before, reads_before = len(pass_writes()), len(cluster.plane.requests(OPERATOR_USER))  # type: ignore[union-attr]
    time.sleep(3 * period + 1)
    extra = pass_writes()[before:]
    assert extra == [], [(w["verb"], w["objectRef"], w["requestReceivedTimestamp"]) for w in extra]
    # The platforms, their children and the policies are read from the watches: the passes send no
    # read at all (the leader's lease renewals aside).
    reads = cluster.plane.requests(OPERATOR_USER)[reads_before:]  # type: ignore[union-attr]
    read = {
        (r["verb"], r.get("objectRef", {}).get("resource"))
        for r in reads
        if r["verb"] in ("get", "list") and r.get("objectRef", {}).get("resource") != "leases"
    }
    assert read == set(), read
    passes = [
        line
        for line in operator.metrics().splitlines()
        if line.startswith('wallet_operator_reconcile_duration_seconds_count{trigger="resync"}')
    ]
    assert passes and float(passes[0].split()[-1]) >= 3, passes


def test_deleting_the_platform_removes_children_and_keeps_data(
    cluster: Cluster, namespace: str, operator: operator_env.Operator, cat: catalog.Catalog
) -> None:
    doc = platforms.platform_doc(DEV_EXAMPLE, namespace)
    name = doc["metadata"]["name"]
    converge(cluster, namespace, doc, cat)
    cluster.client.delete(platforms.API, "WalletPlatform", name, namespace)
    kept = {
        ("postgresql.cnpg.io/v1", "Cluster", f"{name}-pg"),
        ("redis.redis.opstreelabs.in/v1beta2", "RedisCluster", f"{name}-redis"),
        ("v1", "ConfigMap", f"{name}-redis-config"),
        ("v1", "Secret", f"{name}-redis-auth"),  # the password the kept RedisCluster needs
    }
    processes.wait_until(lambda: live_keys(cluster, namespace, name) == kept, WAIT, "only retained data left")
    redis = cluster.client.get(*platforms.REDIS, f"{name}-redis", namespace)
    assert redis is not None and redis["spec"]["storage"]["keepAfterDelete"] is True


def test_without_retain_data_everything_is_collected(
    cluster: Cluster, namespace: str, operator: operator_env.Operator, cat: catalog.Catalog
) -> None:
    doc = platforms.platform_doc(DEV_EXAMPLE, namespace)
    doc["spec"]["retainData"] = False
    name = doc["metadata"]["name"]
    platforms.apply_platform(cluster.client, doc)
    wait_keys(cluster, namespace, name, rendered_keys(doc, cat))
    cluster.client.delete(platforms.API, "WalletPlatform", name, namespace)
    processes.wait_until(lambda: not live_keys(cluster, namespace, name), WAIT, "every child collected")


def test_a_spec_the_catalog_rejects_is_degraded_with_the_field_path(
    cluster: Cluster, namespace: str, operator: operator_env.Operator
) -> None:
    doc = platforms.platform_doc(DEV_EXAMPLE, namespace)
    doc["spec"]["services"].append({"name": "ledger"})
    platforms.apply_platform(cluster.client, doc)
    degraded = platforms.wait_condition(
        cluster.client, namespace, doc["metadata"]["name"], "Degraded", "True", "InvalidSpec"
    )
    index = len(doc["spec"]["services"]) - 1
    assert degraded["message"].startswith(f"spec.services[{index}].name: 'ledger' is not a catalog service")
    assert not live_keys(cluster, namespace, doc["metadata"]["name"]), "nothing half-applied"


def test_a_policy_naming_an_unknown_service_says_so_in_its_status(
    cluster: Cluster, namespace: str, operator: operator_env.Operator, cat: catalog.Catalog
) -> None:
    doc = platforms.platform_doc(DEV_EXAMPLE, namespace)
    missing = doc["spec"]["services"].pop()["name"]  # a catalog service this platform does not run
    kept = doc["spec"]["services"][0]["name"]
    platforms.apply_platform(cluster.client, doc)
    policy = {
        "apiVersion": platforms.API,
        "kind": "ScalingPolicy",
        "metadata": {"name": "bad", "namespace": namespace},
        "spec": {"platformRef": doc["metadata"]["name"], "services": [kept, missing]},
    }
    cluster.client.apply(policy, "wallet-tests")

    def valid_false() -> dict[str, Any] | None:
        body = cluster.client.get(platforms.API, "ScalingPolicy", "bad", namespace) or {}
        return platforms.condition(body, "Valid")

    processes.wait_until(lambda: (valid_false() or {}).get("status") == "False", WAIT, "policy Valid=False")
    found = valid_false()
    assert found is not None and found["reason"] == "UnknownService"
    assert f"{missing!r} is not a service of platform" in found["message"]


def test_secrets_never_appear_in_status_events_or_logs(
    cluster: Cluster, namespace: str, operator: operator_env.Operator, cat: catalog.Catalog
) -> None:
    secret_value = "s3cr3t-Value-7c1f"
    literal = "tok-literal-9a2e"
    cluster.client.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "psp", "namespace": namespace},
            "stringData": {"key": secret_value},
        },
        "wallet-tests",
    )
    doc = platforms.platform_doc(DEV_EXAMPLE, namespace)
    doc["spec"]["services"][0]["env"] = [
        {"name": "PSP_KEY", "secretName": "psp", "secretKey": "key"},
        {"name": "PSP_TOKEN", "value": literal},
    ]
    converge(cluster, namespace, doc, cat)
    name = doc["metadata"]["name"]
    deployment = cluster.client.get("apps/v1", "Deployment", f"{name}-{doc['spec']['services'][0]['name']}", namespace)
    assert deployment is not None and literal in str(deployment["spec"])  # the value did reach its place
    status = str(platforms.get_platform(cluster.client, namespace, name).get("status"))
    events = str([e.get("message") for e in cluster.client.list("v1", "Event", namespace)])
    logs = operator.logs()
    for text in (secret_value, literal):
        assert text not in status and text not in events and text not in logs


def test_an_object_the_platform_did_not_create_is_not_taken_over(
    cluster: Cluster, namespace: str, operator: operator_env.Operator, cat: catalog.Catalog
) -> None:
    doc = platforms.platform_doc(DEV_EXAMPLE, namespace)
    name = doc["metadata"]["name"]
    foreign = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{name}-payment", "namespace": namespace, "labels": {"team": "billing"}},
        "spec": {
            "selector": {"matchLabels": {"app": "billing"}},
            "template": {
                "metadata": {"labels": {"app": "billing"}},
                "spec": {"containers": [{"name": "billing", "image": "registry.example/billing:7"}]},
            },
        },
    }
    cluster.client.create(foreign)
    platforms.apply_platform(cluster.client, doc)
    degraded = platforms.wait_condition(cluster.client, namespace, name, "Degraded", "True", "NotOwned", WAIT)
    assert f"Deployment {name}-payment exists and was not created by this platform" in degraded["message"]
    live = cluster.client.get("apps/v1", "Deployment", f"{name}-payment", namespace)
    assert live is not None and not live["metadata"].get("ownerReferences")
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/billing:7"
    # Everything else of the platform is applied (the HPA too: it targets the name, not the object).
    others = rendered_keys(doc, cat) - {("apps/v1", "Deployment", f"{name}-payment")}
    processes.wait_until(lambda: others <= live_keys(cluster, namespace, name), WAIT, "the other children applied")

    # Once the other Deployment is gone, the platform creates its own.
    cluster.client.delete("apps/v1", "Deployment", f"{name}-payment", namespace)
    platforms.wait_condition(cluster.client, namespace, name, "Degraded", "False", timeout=WAIT)
    ours = cluster.client.get("apps/v1", "Deployment", f"{name}-payment", namespace)
    assert ours is not None and ours["metadata"]["labels"]["wallet.platform.io/platform"] == name


def test_a_platform_breaking_its_environments_guardrails_is_refused_and_nothing_applied(
    cluster: Cluster, namespace: str, operator: operator_env.Operator
) -> None:
    doc = platforms.platform_doc(PROD_EXAMPLE, namespace)
    doc["spec"]["postgres"]["instances"] = 2
    platforms.apply_platform(cluster.client, doc)
    degraded = platforms.wait_condition(
        cluster.client, namespace, doc["metadata"]["name"], "Degraded", "True", "InvalidSpec"
    )
    assert "spec.instances: 2 is below the 3 instances prod requires" in degraded["message"], degraded
    assert not live_keys(cluster, namespace, doc["metadata"]["name"]), "nothing half-applied"
