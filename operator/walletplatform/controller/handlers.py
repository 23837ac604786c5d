"""The Kopf side of the operator: handlers registered on a registry built per run (no global state),
and the periodic loops (platform resync, scaling) started on Kopf's start-up.

* create / update / resume of a WalletPlatform -> reconcile_platform; a data tier that is not Ready
  yet is a ``kopf.TemporaryError`` with a delay (Kopf retries; nothing sleeps); a bad spec is a
  ``kopf.PermanentError`` (status says why; retrying cannot help).
* no delete handler and no Kopf timers, so Kopf adds no finalizer: deletion never waits for the
  operator. Children go through ownerReferences; retained data carries none.
* the children are watched (controller/children.py): a child edited or deleted by hand, or a
  ScalingPolicy changed, reconciles its platform within about a second (``Drift`` collects a burst of
  events into one pass), and every reconcile reads the children from those watches, not by LIST.
* the resync loop re-reads every platform every ``resync_seconds`` and reconciles it: the safety net
  behind the watches; a no-op pass reads the platforms from those watches: no request, no write.
* every background loop runs under ``guarded_loop``: no exception ends it (an API-server outage is
  logged, counted and retried), and the liveness probe fails when a loop stops making progress.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import kopf

from walletplatform import API_GROUP, API_VERSION, catalog
from walletplatform.clients import kube
from walletplatform.controller import children, metrics
from walletplatform.controller import platform as platform_ctl
from walletplatform.controller import settings as settings_mod

log = logging.getLogger(__name__)
API = f"{API_GROUP}/{API_VERSION}"
PREFIX = API_GROUP


class Drift:
    """Platforms whose children changed, each due for one reconcile once its burst of events is over:
    no event for ``QUIET`` seconds, or ``LONGEST`` after the first (a pass applies many children, and
    a hand edit can be several writes)."""

    QUIET = 0.3
    LONGEST = 1.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], tuple[float, float]] = {}

    def note(self, namespace: str, name: str) -> None:
        now = time.monotonic()
        with self._lock:
            first, _ = self._pending.get((namespace, name), (now, now))
            self._pending[(namespace, name)] = (first, now)

    def due(self, now: float) -> list[tuple[str, str]]:
        with self._lock:
            ready = [
                key
                for key, (first, last) in self._pending.items()
                if now - last >= self.QUIET or now - first >= self.LONGEST
            ]
            for key in ready:
                del self._pending[key]
        return ready


@dataclasses.dataclass
class Memo:
    """Shared by every handler of one operator run."""

    client: kube.Kube
    catalog: catalog.Catalog
    settings: settings_mod.Settings
    heartbeat: float = dataclasses.field(default_factory=time.monotonic)
    tasks: list[asyncio.Task[None]] = dataclasses.field(default_factory=list)
    # Each background loop's last completed iteration (monotonic), and how long it may go without one:
    # liveness fails when a loop is stuck or dead, not when its iterations fail (an outage).
    progress: dict[str, float] = dataclasses.field(default_factory=dict)
    deadlines: dict[str, float] = dataclasses.field(default_factory=dict)
    cache: children.ChildCache | None = None
    drift: Drift = dataclasses.field(default_factory=Drift)

    def stalled(self, now: float | None = None) -> list[str]:
        """The loops that made no progress within their deadline."""
        at = time.monotonic() if now is None else now
        return sorted(name for name, last in self.progress.items() if at - last > self.deadlines.get(name, 60.0))


def configure(kopf_settings: kopf.OperatorSettings) -> None:
    """Kopf keeps its bookkeeping in our annotations; it posts only warnings as Events (we post our own)."""
    kopf_settings.peering.standalone = True  # leader election happens before Kopf starts (leader.py)
    kopf_settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    kopf_settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
    kopf_settings.posting.level = logging.WARNING
    kopf_settings.watching.server_timeout = 300
    kopf_settings.watching.client_timeout = 330
    kopf_settings.networking.request_timeout = 30


def plain(body: Any) -> dict[str, Any]:
    """A Kopf body as plain nested dicts (what the pure core and the client expect)."""
    return {key: body[key] for key in body}


def _reconcile_handler(settings: settings_mod.Settings) -> Any:
    def handler(body: kopf.Body, reason: str, memo: Memo, **_: Any) -> None:
        result = platform_ctl.reconcile_platform(
            memo.client, plain(body), memo.catalog, trigger=str(reason), cache=memo.cache
        )
        if result.invalid:
            raise kopf.PermanentError(result.error)
        if result.error:
            raise kopf.TemporaryError(result.error, delay=settings.dependency_retry_seconds)
        # Waiting for the data tier is not retried: the status of the Cluster, Pooler and RedisCluster is
        # watched (children.STATUS_READ), so the platform is reconciled when it changes. A retry held
        # in Kopf would write its progress annotations at every retry (and touch the object every 10
        # minutes while a long retry waits): writes that a waiting platform has no reason to send.
        if result.waiting:
            log.info("%s/%s waits for %s", body["metadata"]["namespace"], body["metadata"]["name"], result.waiting)

    return handler


MAX_BACKOFF_SECONDS = 30.0


async def guarded_loop(
    memo: Memo, name: str, period: float, iteration: Callable[[], Awaitable[None]], deadline: float | None = None
) -> None:
    """Run ``iteration`` every ``period`` seconds forever: any exception is logged, counted in
    ``wallet_operator_loop_errors_total`` and retried after a growing backoff (never longer than the
    period); each completed iteration, failed or not, is progress for the liveness probe, which fails
    after ``deadline`` seconds without one (default three periods and 30 s)."""
    memo.deadlines[name] = deadline if deadline is not None else 3 * period + 30
    memo.progress[name] = time.monotonic()
    failures = 0
    while True:
        try:
            await iteration()
            failures = 0
        except asyncio.CancelledError:
            raise
        except Exception:
            failures += 1
            metrics.LOOP_ERRORS.labels(name).inc()
            log.exception("%s loop: iteration failed (%d in a row); retrying", name, failures)
        metrics.LOOP_ITERATIONS.labels(name).inc()
        memo.progress[name] = time.monotonic()
        await asyncio.sleep(period if not failures else min(period, 2.0 ** min(failures, 5), MAX_BACKOFF_SECONDS))


def _platform_keys(memo: Memo) -> list[tuple[str, str]]:
    """Every platform's (namespace, name): from the watches once they have listed, else one LIST per
    watched namespace (and then ``_platform`` GETs each: only until every watch has listed once)."""
    if memo.cache is not None and memo.cache.synced():
        return memo.cache.platform_keys()
    namespaces = memo.settings.namespaces or (None,)
    listed = (body["metadata"] for ns in namespaces for body in memo.client.list(API, "WalletPlatform", ns))
    return sorted((meta["namespace"], meta["name"]) for meta in listed)


def _platform(memo: Memo, namespace: str, name: str) -> dict[str, Any] | None:
    if memo.cache is not None and memo.cache.synced():
        return memo.cache.platform(namespace, name)
    return memo.client.get(API, "WalletPlatform", name, namespace)


def _reconcile(memo: Memo, namespace: str, name: str, trigger: str) -> None:
    """Reconcile one platform as last seen; a platform gone or being deleted is left to the garbage
    collector. Its body is decoded here, for this pass only: a pass over every platform holds one at a
    time, not all of them."""
    body = _platform(memo, namespace, name)
    if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
        return
    platform_ctl.reconcile_platform(memo.client, body, memo.catalog, trigger=trigger, cache=memo.cache)


async def _resync_once(memo: Memo) -> None:
    """Reconcile every platform (in a thread: the client is sync)."""
    keys = await asyncio.to_thread(_platform_keys, memo)
    log.info("resync: %d platform(s)", len(keys))
    if memo.cache is not None:
        await asyncio.to_thread(memo.cache.refresh_kinds)  # a CRD installed since: watch its kind too
    for namespace, name in keys:
        try:
            await asyncio.to_thread(_reconcile, memo, namespace, name, "resync")
        except Exception:  # one platform's failure must not stop the others' resync
            log.exception("resync of %s/%s failed", namespace, name)


async def _resync_loop(memo: Memo) -> None:
    """Every resync period, after the first: the safety net that restores deleted or edited children."""
    await asyncio.sleep(memo.settings.resync_seconds)
    await guarded_loop(memo, "resync", memo.settings.resync_seconds, lambda: _resync_once(memo))


async def _drift_once(memo: Memo) -> None:
    """Reconcile the platforms whose children changed (the event may be their deletion)."""
    for namespace, name in memo.drift.due(time.monotonic()):
        try:
            await asyncio.to_thread(_reconcile, memo, namespace, name, "drift")
        except Exception:  # one platform's failure must not stop the others' repair
            log.exception("drift repair of %s/%s failed", namespace, name)


DRIFT_PERIOD = 0.1


async def _drift_loop(memo: Memo) -> None:
    """Watch the children and repair drift within about a second (the resync stays as the safety net)."""
    memo.cache = children.ChildCache(memo.client, memo.settings.namespaces, memo.drift.note)
    while True:  # until every informer is started (reconciles list their children until they have synced)
        try:
            await asyncio.to_thread(memo.cache.start)
            break
        except Exception:
            log.exception("starting the watches on children failed; retrying")
            await asyncio.sleep(2)
    try:
        # Many platforms' repairs can fill one iteration: its deadline is a resync period's, not 0.1 s's.
        deadline = 3 * memo.settings.resync_seconds + 30
        await guarded_loop(memo, "drift", DRIFT_PERIOD, lambda: _drift_once(memo), deadline=deadline)
    finally:
        memo.cache.stop()


async def _heartbeat_loop(memo: Memo) -> None:
    """Proves the event loop is not stuck: the liveness endpoint checks this timestamp."""
    while True:
        memo.heartbeat = time.monotonic()
        await asyncio.sleep(2)


def _loop_ended(memo: Memo, task: asyncio.Task[None]) -> None:
    """A loop task only ends when cancelled at shutdown; any other end is a bug: make liveness fail."""
    if task.cancelled():
        return
    log.error("a background loop ended: %r", task.exception())
    memo.progress[f"ended:{task.get_name()}"] = float("-inf")


def build_registry(settings: settings_mod.Settings, extra_loops: tuple[Any, ...] = ()) -> kopf.OperatorRegistry:
    """All handlers of one operator run; ``extra_loops`` are coroutine functions of the Memo (the scaler)."""
    registry = kopf.OperatorRegistry()
    handler = _reconcile_handler(settings)
    for decorator in (kopf.on.create, kopf.on.update, kopf.on.resume):
        decorator(API_GROUP, API_VERSION, "walletplatforms", registry=registry, id="reconcile")(handler)

    @kopf.on.startup(registry=registry)
    def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure(settings)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        if settings.kubeconfig is None:
            return kopf.login_with_service_account(**kwargs)
        return kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.startup(registry=registry)
    async def start_loops(memo: Memo, **_: Any) -> None:
        for loop in (_drift_loop, _resync_loop, _heartbeat_loop, *extra_loops):
            task = asyncio.create_task(loop(memo))
            task.add_done_callback(functools.partial(_loop_ended, memo))
            memo.tasks.append(task)

    @kopf.on.cleanup(registry=registry)
    async def stop_loops(memo: Memo, **_: Any) -> None:
        for task in memo.tasks:
            task.cancel()

    return registry
