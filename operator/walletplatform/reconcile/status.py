"""Pure mapping from the live children to the WalletPlatform's status: per-component readiness read
from each child's own status, and the Ready / Reconciled / Degraded conditions whose messages name the
component that blocks Ready and why. The controller calls ``render_status`` after every reconcile and
writes the result only when it differs from what the object already has."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

import pydantic

from walletplatform.catalog import ResolvedPlatform
from walletplatform.models import platform
from walletplatform.render import labels

Live = Mapping[str, Any]
CNPG_HEALTHY = "Cluster in healthy state"


class Observed(NamedTuple):
    """What the controller read back after applying: children by name (None when missing)."""

    deployments: Mapping[str, Live | None]
    postgres: Live | None
    redis: Live | None


class Outcome(NamedTuple):
    """How the apply went: how many children the spec renders, and the first error (empty when none).

    Per-pass counts go to Events, not status: status must not change on a pass that changed nothing."""

    children: int
    error: str = ""
    error_reason: str = "ApplyFailed"


def read_deployment(name: str, live: Live | None) -> platform.ComponentStatus:
    if live is None:
        return platform.ComponentStatus(kind="Deployment", ready=False, message=f"Deployment {name} does not exist")
    status = live.get("status") or {}
    available = int(status.get("availableReplicas") or 0)
    replicas = int(status.get("replicas") or 0)
    if available >= 1:
        return platform.ComponentStatus(kind="Deployment", ready=True, message=f"{available}/{replicas} available")
    why = _failing_condition(status.get("conditions") or [])
    return platform.ComponentStatus(
        kind="Deployment",
        ready=False,
        message=f"{available}/{replicas} replicas available" + (f": {why}" if why else ""),
    )


def read_postgres(name: str, live: Live | None) -> platform.ComponentStatus:
    """CloudNativePG reports its own Ready condition and a phase in words."""
    if live is None:
        return platform.ComponentStatus(kind="Cluster", ready=False, message=f"Cluster {name} does not exist")
    status = live.get("status") or {}
    ready_condition = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    phase = str(status.get("phase") or "")
    if ready_condition or phase == CNPG_HEALTHY:
        return platform.ComponentStatus(
            kind="Cluster",
            ready=True,
            message=f"{status.get('readyInstances', '?')}/{status.get('instances', '?')} ready",
        )
    if not status:
        return platform.ComponentStatus(
            kind="Cluster", ready=False, message=f"Cluster {name} has no status yet (is CloudNativePG running?)"
        )
    return platform.ComponentStatus(kind="Cluster", ready=False, message=phase or "not ready")


def read_redis(name: str, live: Live | None) -> platform.ComponentStatus:
    """The OT redis-operator sets status.state to Ready once every leader and follower is up."""
    if live is None:
        return platform.ComponentStatus(kind="RedisCluster", ready=False, message=f"RedisCluster {name} does not exist")
    status = live.get("status") or {}
    state = str(status.get("state") or "")
    leaders = f"{status.get('readyLeaderReplicas', 0)} leaders, {status.get('readyFollowerReplicas', 0)} followers"
    if state == "Ready":
        return platform.ComponentStatus(kind="RedisCluster", ready=True, message=leaders + " ready")
    if not status:
        return platform.ComponentStatus(
            kind="RedisCluster",
            ready=False,
            message=f"RedisCluster {name} has no status yet (is redis-operator running?)",
        )
    reason = status.get("reason") or state or "not ready"
    return platform.ComponentStatus(kind="RedisCluster", ready=False, message=f"{reason} ({leaders} ready)")


def _failing_condition(conditions: Sequence[Live]) -> str:
    for condition in conditions:
        if condition.get("status") == "False" and condition.get("message"):
            return str(condition["message"])
    return ""


def read_components(resolved: ResolvedPlatform, observed: Observed) -> dict[str, platform.ComponentStatus]:
    """Component name -> readiness; services keep the catalog order, the data tier comes first."""
    components = {
        "postgres": read_postgres(labels.postgres_name(resolved.name), observed.postgres),
        "redis": read_redis(labels.redis_name(resolved.name), observed.redis),
    }
    for name in resolved.names:
        components[name] = read_deployment(labels.service_name(resolved.name, name), observed.deployments.get(name))
    return components


def data_tier_ready(components: Mapping[str, platform.ComponentStatus]) -> bool:
    return components["postgres"].ready and components["redis"].ready


def _condition(kind: str, ok: bool, reason: str, *, message: str, generation: int | None) -> platform.Condition:
    return platform.Condition(
        type=kind,
        status=platform.ConditionStatus.TRUE if ok else platform.ConditionStatus.FALSE,
        reason=reason,
        message=message,
        observed_generation=generation,
    )


def stamp_transitions(
    conditions: Sequence[platform.Condition], previous: Sequence[platform.Condition], now: datetime
) -> list[platform.Condition]:
    """Keep each condition's lastTransitionTime while its status holds; set it to ``now`` when it changes."""
    before = {c.type: c for c in previous}
    stamped = []
    for c in conditions:
        old = before.get(c.type)
        since = old.last_transition_time if old and old.status == c.status and old.last_transition_time else now
        stamped.append(c.model_copy(update={"last_transition_time": since}))
    return stamped


StatusT = TypeVar("StatusT", bound=pydantic.BaseModel)


def parse_status(model: type[StatusT], raw: object) -> StatusT | None:
    """A status as last written, or None when absent or unreadable (it is then rewritten whole)."""
    if not raw:
        return None
    try:
        return model.model_validate(raw)
    except pydantic.ValidationError:
        return None


def render_status(
    resolved: ResolvedPlatform,
    observed: Observed,
    outcome: Outcome,
    *,
    generation: int | None,
    previous: platform.WalletPlatformStatus | None,
    now: datetime,
) -> platform.WalletPlatformStatus:
    """The whole status; ``lastTransitionTime`` only moves when a condition's status changes."""
    components = read_components(resolved, observed)
    blocking = [f"{name} ({c.message})" for name, c in components.items() if not c.ready]
    services = [components[n] for n in resolved.names]
    ready_services = sum(1 for s in services if s.ready)
    if outcome.error:
        reconciled = _condition("Reconciled", False, outcome.error_reason, message=outcome.error, generation=generation)
    else:
        text = f"all {outcome.children} objects applied"
        reconciled = _condition("Reconciled", True, "Applied", message=text, generation=generation)
    if not blocking:
        why = "AllComponentsReady"
    else:
        why = "WaitingForDataTier" if not data_tier_ready(components) else "ServicesNotReady"
    ready = _condition(
        "Ready",
        not blocking and not outcome.error,
        why,
        message="all components ready" if not blocking else "waiting for: " + "; ".join(blocking),
        generation=generation,
    )
    degraded = _condition(
        "Degraded",
        bool(outcome.error),
        outcome.error_reason if outcome.error else "AsExpected",
        message=outcome.error or "no errors",
        generation=generation,
    )
    conditions = stamp_transitions((ready, reconciled, degraded), previous.conditions if previous else [], now)
    retained = [
        f"{kind} {name}"
        for kind, name, keep in (
            ("Cluster", labels.postgres_name(resolved.name), resolved.spec.retain_data),
            ("RedisCluster", labels.redis_name(resolved.name), resolved.spec.retain_data),
        )
        if keep
    ]
    return platform.WalletPlatformStatus(
        observed_generation=generation,
        conditions=conditions,
        components=components,
        services_ready=f"{ready_services}/{len(services)}",
        postgres="Ready" if components["postgres"].ready else "NotReady",
        redis="Ready" if components["redis"].ready else "NotReady",
        scaling=previous.scaling if previous else [],
        last_error=outcome.error or (previous.last_error if previous else ""),
        retained=retained,
    )
