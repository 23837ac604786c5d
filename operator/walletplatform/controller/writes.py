"""Writing a platform's children: server-side apply of what differs, wave by wave (what others refer to
first), concurrently on one pool the whole operator shares; never over an object of the same kind and
name that this platform did not create."""

from __future__ import annotations

import concurrent.futures
import dataclasses
from typing import Any

from walletplatform.clients import kube
from walletplatform.controller import metrics
from walletplatform.controller import settings as settings_mod
from walletplatform.models import common
from walletplatform.reconcile import compare
from walletplatform.render import labels


@dataclasses.dataclass
class Result:
    """What one reconcile did; ``waiting`` names the data-tier component not ready yet (retry later)."""

    written: list[str] = dataclasses.field(default_factory=list)
    pruned: list[str] = dataclasses.field(default_factory=list)
    error: str = ""
    waiting: str = ""
    invalid: bool = False


def describe(obj: dict[str, Any] | common.Manifest) -> str:
    _, kind, name = compare.object_key(obj)
    return f"{kind} {name}"


Children = dict[tuple[str, str, str], Any]


# Applies of one platform run concurrently in waves, so that what others refer to exists first
# (ServiceAccounts, Secrets and ConfigMaps before the workloads that mount them; workloads before the
# autoscalers, budgets and monitors that target them). Every reconcile shares one pool: at most this
# many requests of the operator's applies are in flight at once, however many platforms reconcile
# together, and its threads live as long as the process (a pool per pass started and ended eight
# threads for every platform of every resync).
APPLY_CONCURRENCY = 16
_pool = concurrent.futures.ThreadPoolExecutor(APPLY_CONCURRENCY, thread_name_prefix="apply")
WAVES = {
    "ConfigMap": 0,
    "Secret": 0,
    "ServiceAccount": 0,
    "Service": 0,
    "NetworkPolicy": 0,
    "Cluster": 1,
    "Pooler": 1,
    "RedisCluster": 1,
    "Deployment": 1,
}
LAST_WAVE = 2


@dataclasses.dataclass
class _Outcome:
    """What happened to one desired child: ``applied`` holds the live object after a write."""

    foreign: str | None = None
    why: str = ""
    applied: dict[str, Any] | None = None
    error: str = ""


def apply_children(
    client: kube.Kube,
    *,
    desired: list[common.Manifest],
    live: Children,
    unserved: set[str],
    current: Children,
    result: Result,
) -> str:
    """Apply what differs (wave by wave, concurrently within a wave); returns the error reason to report
    if anything failed. Results are recorded in ``desired`` order, whatever order the writes finished in."""
    needed = {f"{o['apiVersion']}/{o['kind']}" for o in desired} & unserved
    reason = "ApplyFailed"
    if needed:
        result.error = f"CRDs not installed: {', '.join(sorted(needed))}"
        reason = "MissingCRD"
    todo = [obj for obj in desired if "{}/{}".format(*compare.object_key(obj)[:2]) not in needed]

    missing = [obj for obj in todo if compare.object_key(obj) not in live]
    outcomes: dict[int, _Outcome] = {}
    existing = _existing_names(client, missing, _pool)

    def one(obj: common.Manifest, verdict: compare.Verdict) -> _Outcome:
        key = compare.object_key(obj)
        if key not in live and (foreign := _foreign(client, obj, existing.get(key[:2]))):
            return _Outcome(foreign=foreign)
        try:
            return _Outcome(why=verdict.reason, applied=client.apply(obj, settings_mod.OPERATOR_MANAGER))
        except kube.ApiError as exc:
            return _Outcome(why=verdict.reason, error=exc.message)

    verdicts = [compare.decide_write(obj, live.get(compare.object_key(obj))) for obj in todo]
    for wave in range(LAST_WAVE + 1):
        batch = [i for i, obj in enumerate(todo) if WAVES.get(str(obj["kind"]), LAST_WAVE) == wave]
        # A live child that matches needs no request: settled here; the rest go to the shared pool.
        outcomes |= {i: _Outcome() for i in batch if not verdicts[i].write}
        busy = [i for i in batch if verdicts[i].write]
        outcomes |= dict(zip(busy, _pool.map(lambda i: one(todo[i], verdicts[i]), busy), strict=True))
    for i, obj in enumerate(todo):
        outcome = outcomes[i]
        if outcome.foreign:
            result.error = result.error or outcome.foreign
            reason = "NotOwned"
        elif outcome.error:
            result.error = result.error or f"{describe(obj)}: {outcome.error}"
        elif outcome.applied is not None:
            current[compare.object_key(obj)] = outcome.applied
            result.written.append(f"{describe(obj)} ({outcome.why})")
            metrics.OBJECTS_APPLIED.labels(str(obj["kind"])).inc()
    return reason


def _existing_names(
    client: kube.Kube, missing: list[common.Manifest], pool: concurrent.futures.Executor
) -> dict[tuple[str, str], dict[str, dict[str, str]]]:
    """Per kind of the children missing from the platform's own, the objects of their namespace (name
    -> labels): one metadata-only LIST per kind, concurrently, instead of a GET per child (a new
    platform misses all 60). A kind whose list fails is left out: its children are read one by one."""
    kinds = sorted(
        {(str(o["apiVersion"]), str(o["kind"]), str(o["metadata"].get("namespace") or "")) for o in missing}  # type: ignore[union-attr]
    )

    def names(item: tuple[str, str, str]) -> dict[str, dict[str, str]] | None:
        try:
            return client.labels_by_name(item[0], item[1], item[2] or None)
        except kube.ApiError:
            return None

    return {item[:2]: found for item, found in zip(kinds, pool.map(names, kinds), strict=True) if found is not None}


def _foreign(client: kube.Kube, obj: common.Manifest, taken: dict[str, dict[str, str]] | None = None) -> str | None:
    """Why ``obj`` must not be applied: an object of that kind and name exists without this platform's
    label, so the platform did not create it. Server-side apply with force would take it over, e.g. an
    HPA put on someone else's Deployment. ``taken``: that kind's objects in the namespace (name ->
    labels) when known, else the object is read."""
    meta = obj["metadata"]
    assert isinstance(meta, dict)
    name, namespace = str(meta["name"]), meta.get("namespace")
    platform = (meta.get("labels") or {}).get(labels.PLATFORM_LABEL)  # type: ignore[union-attr]
    if taken is not None:
        found = taken.get(name)
    else:
        try:
            existing = client.get(str(obj["apiVersion"]), str(obj["kind"]), name, str(namespace) if namespace else None)
        except kube.ApiError:
            return None  # the apply that follows reports the API's error
        found = None if existing is None else dict((existing.get("metadata") or {}).get("labels") or {})
    if found is None or found.get(labels.PLATFORM_LABEL) == platform:
        return None  # free, or this platform's own (created a moment ago, not yet seen by the watch)
    return (
        f"{describe(obj)} exists and was not created by this platform: not taken over (delete or rename it, "
        f"or label it {labels.PLATFORM_LABEL}={platform} to hand it to the platform)"
    )
