"""reconcile_platform: make the cluster match one WalletPlatform, idempotently.

Called by the Kopf handlers (create, update, resume) and by the periodic resync. Reads the children by
label, writes only what differs (server-side apply, field manager ``wallet-operator``), prunes what the
spec no longer renders (by label and ownerReference uid), writes the static HPA floor for services no
ScalingPolicy governs (field manager ``wallet-scaler``, the floor's one owner), then writes status only
when it changed. A no-op reconcile is reads only."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from walletplatform import API_GROUP, API_VERSION, catalog, generated_secrets, render, rules
from walletplatform.clients import kube
from walletplatform.controller import children, events, metrics, writes
from walletplatform.controller import settings as settings_mod
from walletplatform.models import common, errors, platform, resources, scaling
from walletplatform.reconcile import compare, status
from walletplatform.render import autoscaling, labels

log = logging.getLogger(__name__)
API = f"{API_GROUP}/{API_VERSION}"
HPA = children.HPA
COVERING_MODES = (scaling.Mode.AUTO, scaling.Mode.PAUSED)
_locks: dict[tuple[str, str], threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(namespace: str, name: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault((namespace, name), threading.Lock())


def fetch_children(
    client: kube.Kube, namespace: str, name: str, cache: children.ChildCache | None = None
) -> tuple[dict[tuple[str, str, str], Any], set[str]]:
    """Live children by key and the kinds the server does not serve: from the watches' cache when it
    has listed everything, else listed per kind by the platform label."""
    if cache is not None and cache.synced():
        return cache.children(namespace, name), set(cache.unserved)
    live: dict[tuple[str, str, str], Any] = {}
    missing: set[str] = set()
    selector = f"{labels.PLATFORM_LABEL}={name}"
    for api_version, kind in render.KINDS:
        if not client.served(api_version, kind):
            missing.add(f"{api_version}/{kind}")
            continue
        for obj in client.list(api_version, kind, namespace, selector):
            live[compare.object_key(obj)] = obj
    return live, missing


def fetch_covered_services(
    client: kube.Kube, namespace: str, name: str, cache: children.ChildCache | None = None
) -> set[str]:
    """Services whose floor a ScalingPolicy owns (Auto or Paused); ForecastOnly leaves the static floor."""
    covered: set[str] = set()
    bodies = (
        cache.policies(namespace)
        if cache is not None and cache.synced()
        else client.list(API, "ScalingPolicy", namespace)
    )
    for obj in bodies:
        try:
            spec = resources.parse_spec(scaling.ScalingPolicySpec, obj.get("spec"))
        except errors.SpecError:
            continue
        if spec.platform_ref == name and spec.mode in COVERING_MODES:
            covered.update(spec.services)
    return covered


def _static_floors(resolved: catalog.ResolvedPlatform) -> dict[str, int]:
    return {labels.service_name(resolved.name, s.name): s.min_replicas for s in resolved.services}


def reconcile_platform(
    client: kube.Kube,
    body: dict[str, Any],
    cat: catalog.Catalog,
    *,
    trigger: str,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    cache: children.ChildCache | None = None,
) -> writes.Result:
    """One idempotent pass over one WalletPlatform ``body`` (as the API server returned it); children are
    read from ``cache`` when given (and synced)."""
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    started = time.monotonic()
    with _lock(namespace, name):
        result = _reconcile(client, body, cat, now=now, cache=cache)
    metrics.RECONCILE_SECONDS.labels(trigger).observe(time.monotonic() - started)
    if result.error:
        log.warning("reconcile %s/%s (%s): %s", namespace, name, trigger, result.error)
    elif result.written or result.pruned:
        log.info(
            "reconcile %s/%s (%s): %s; %s",
            namespace,
            name,
            trigger,
            _summary("wrote", result.written),
            _summary("pruned", result.pruned),
        )
    return result


def _reconcile(
    client: kube.Kube,
    body: dict[str, Any],
    cat: catalog.Catalog,
    *,
    now: Callable[[], datetime],
    cache: children.ChildCache | None,
) -> writes.Result:
    meta = body["metadata"]
    namespace, name, generation = meta["namespace"], meta["name"], meta.get("generation")
    previous = status.parse_status(platform.WalletPlatformStatus, body.get("status"))
    result = writes.Result()
    try:
        spec = resources.parse_spec(platform.WalletPlatformSpec, body.get("spec"))
        resolved = catalog.resolve(name, namespace, spec, cat)
        # The environment's guardrails (e.g. prod needs 3 Postgres instances): refused before anything
        # is applied, as `walletctl render` and the Pulumi policy pack refuse them.
        rendered = render.render_platform(resolved)
        violations = rules.check_platform(resolved, rendered)
        if violations:
            raise errors.SpecError(violations)
    except errors.SpecError as exc:
        result.error = "; ".join(str(p) for p in exc.problems)
        result.invalid = True
        metrics.RECONCILE_ERRORS.labels("InvalidSpec").inc()
        _write_status_invalid(client, body, previous, message=result.error, generation=generation, now=now())
        return result

    owner = compare.Owner(name, meta["uid"])
    live, unserved = fetch_children(client, namespace, name, cache)
    desired, floors = render_desired(rendered, owner)
    desired = [generated_secrets.fill(obj, live.get(compare.object_key(obj))) for obj in desired]
    current = dict(live)
    error_reason = writes.apply_children(
        client, desired=desired, live=live, unserved=unserved, current=current, result=result
    )
    _apply_static_floors(client, resolved, floors, current, result, cache=cache)
    _prune(
        client,
        namespace=namespace,
        live=live,
        wanted={compare.object_key(o) for o in desired},
        owner=owner,
        current=current,
        result=result,
    )
    if result.error:
        metrics.RECONCILE_ERRORS.labels(error_reason).inc()

    observed = status.Observed(
        deployments={s: current.get(("apps/v1", "Deployment", labels.service_name(name, s))) for s in resolved.names},
        postgres=current.get(("postgresql.cnpg.io/v1", "Cluster", labels.postgres_name(name))),
        redis=current.get(("redis.redis.opstreelabs.in/v1beta2", "RedisCluster", labels.redis_name(name))),
    )
    outcome = status.Outcome(len(desired), result.error, error_reason)
    new = status.render_status(resolved, observed, outcome, generation=generation, previous=previous, now=now())
    components = new.components
    if not status.data_tier_ready(components):
        result.waiting = "; ".join(
            f"{c} ({components[c].message})" for c in ("postgres", "redis") if not components[c].ready
        )
    _write_status(client, body, previous, new)
    _post_events(client, body, result, previous, new)
    return result


def render_desired(
    rendered: list[common.Manifest], owner: compare.Owner
) -> tuple[list[common.Manifest], list[common.Manifest]]:
    """The rendered children as the operator applies them, and the HPA floors split off them."""
    desired: list[common.Manifest] = []
    floors: list[common.Manifest] = []
    for child in rendered:
        obj = child
        if (obj["apiVersion"], obj["kind"]) == HPA:
            obj, floor = autoscaling.split_floor(obj)
            floors.append(floor)
        desired.append(compare.render_owned(obj, owner))
    return desired, floors


def _apply_one(
    client: kube.Kube,
    obj: common.Manifest,
    current: writes.Children,
    result: writes.Result,
    *,
    manager: str,
    what: str,
    why: str,
) -> bool:
    """Apply ``obj`` as ``manager``: the live object goes to ``current`` and ``what (why)`` to the
    written list; an API error becomes the result's first error and False."""
    try:
        current[compare.object_key(obj)] = client.apply(obj, manager)
    except kube.ApiError as exc:
        result.error = result.error or f"{what}: {exc.message}"
        return False
    result.written.append(f"{what} ({why})")
    return True


def _apply_static_floors(
    client: kube.Kube,
    resolved: catalog.ResolvedPlatform,
    floors: list[common.Manifest],
    current: writes.Children,
    result: writes.Result,
    *,
    cache: children.ChildCache | None = None,
) -> None:
    """The static floor of every service no ScalingPolicy governs, under the scaler's field manager."""
    covered = fetch_covered_services(client, resolved.namespace, resolved.name, cache)
    statics = _static_floors(resolved)
    for floor in floors:
        key = compare.object_key(floor)
        service = next(s for s in resolved.names if labels.service_name(resolved.name, s) == key[2])
        hpa = current.get(key)
        if service in covered or hpa is None:
            continue
        # Written when the value differs, and also when nobody owns it yet (a static floor of 1 equals
        # the API server's default), so the scaler's manager is always the field's one owner.
        owned = settings_mod.SCALER_MANAGER in compare.field_managers(hpa, "spec", "minReplicas")
        if owned and (hpa.get("spec") or {}).get("minReplicas") == statics[key[2]]:
            continue
        _apply_one(
            client,
            floor,
            current,
            result,
            manager=settings_mod.SCALER_MANAGER,
            what=f"HorizontalPodAutoscaler {key[2]} minReplicas={statics[key[2]]}",
            why="static floor",
        )


def _prune(
    client: kube.Kube,
    *,
    namespace: str,
    live: writes.Children,
    wanted: set[tuple[str, str, str]],
    owner: compare.Owner,
    current: writes.Children,
    result: writes.Result,
) -> None:
    for obj in compare.select_prunable(list(live.values()), wanted, owner):
        api_version, kind, child = compare.object_key(obj)
        try:
            client.delete(api_version, kind, child, namespace)
        except kube.ApiError as exc:
            result.error = result.error or f"pruning {kind} {child}: {exc.message}"
            continue
        current.pop((api_version, kind, child), None)
        result.pruned.append(f"{kind} {child}")
        metrics.OBJECTS_PRUNED.labels(kind).inc()


def _dump(model: platform.WalletPlatformStatus) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def _write_status(
    client: kube.Kube,
    body: dict[str, Any],
    previous: platform.WalletPlatformStatus | None,
    new: platform.WalletPlatformStatus,
) -> None:
    wanted = _dump(new)
    # Keep fields other writers own (the scaling engine's summary) and compare what we would send.
    if previous is not None and _dump(previous) == wanted:
        return
    client.merge_status(body, wanted)


def _write_status_invalid(
    client: kube.Kube,
    body: dict[str, Any],
    previous: platform.WalletPlatformStatus | None,
    *,
    message: str,
    generation: int | None,
    now: datetime,
) -> None:
    invalid = [
        platform.Condition(
            type=kind,
            status=state,
            reason="InvalidSpec",
            message=message,
            observed_generation=generation,
        )
        for kind, state in (
            ("Ready", platform.ConditionStatus.FALSE),
            ("Reconciled", platform.ConditionStatus.FALSE),
            ("Degraded", platform.ConditionStatus.TRUE),
        )
    ]
    conditions = status.stamp_transitions(invalid, previous.conditions if previous else [], now)
    base = previous or platform.WalletPlatformStatus()
    new = base.model_copy(update={"observed_generation": generation, "conditions": conditions, "last_error": message})
    if previous is None or _dump(previous) != _dump(new):
        _write_status(client, body, previous, new)
        events.post_event(client, body, "Warning", "InvalidSpec", message)


def _post_events(
    client: kube.Kube,
    body: dict[str, Any],
    result: writes.Result,
    previous: platform.WalletPlatformStatus | None,
    new: platform.WalletPlatformStatus,
) -> None:
    if result.written:
        events.post_event(client, body, "Normal", "Applied", _summary("applied", result.written))
    if result.pruned:
        events.post_event(client, body, "Normal", "Pruned", _summary("pruned", result.pruned))
    if result.error and (previous is None or previous.last_error != result.error or result.written):
        events.post_event(client, body, "Warning", "ReconcileFailed", result.error)
    ready_before = next((c for c in previous.conditions if c.type == "Ready"), None) if previous else None
    ready_now = next(c for c in new.conditions if c.type == "Ready")
    if ready_before is None or (ready_before.status, ready_before.reason) != (ready_now.status, ready_now.reason):
        kind: events.EventType = "Normal" if ready_now.status == platform.ConditionStatus.TRUE else "Warning"
        events.post_event(client, body, kind, ready_now.reason, ready_now.message)


def _summary(verb: str, items: list[str]) -> str:
    head = ", ".join(items[:8])
    return f"{verb} {len(items)}: {head}" + (f" and {len(items) - 8} more" if len(items) > 8 else "")
