"""What the operator owns, kept in memory from watches: the informer pattern.

One informer per child kind the renderer emits (and per watched namespace, or cluster-wide) lists the
objects carrying the platform label once, then watches them from that list's resourceVersion; a watch
that ends is resumed from the last version seen, and one whose version expired (410) lists again.
The objects are indexed by (namespace, platform), so a reconcile reads its children from memory
instead of one LIST per kind per platform, and every change after the first list (a child edited or
deleted by hand, or changed by us) calls ``on_change(namespace, platform)``: the operator reconciles
that platform within a second instead of at the next resync. ScalingPolicies are watched the same way
(unlabelled: every policy of the watched namespaces), for the floors they own."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from walletplatform import API_GROUP, API_VERSION, render
from walletplatform.clients import kube
from walletplatform.reconcile import compare
from walletplatform.render import labels

log = logging.getLogger(__name__)
POLICY = (f"{API_GROUP}/{API_VERSION}", "ScalingPolicy")
WATCH_SECONDS = 300
RETRY_SECONDS = 2.0
Key = tuple[str, str, str]  # (apiVersion, kind, name), compare.object_key
OnChange = Callable[[str, str], None]


class Informer:
    """List then watch one kind in one namespace (None: every namespace) into ``store``."""

    def __init__(
        self,
        client: kube.Kube,
        kind: tuple[str, str],
        namespace: str | None,
        selector: str | None,
        changed: Callable[[dict[str, Any] | None, dict[str, Any] | None], None],
    ) -> None:
        self.client, self.kind, self.namespace, self.selector = client, kind, namespace, selector
        self.changed = changed  # (old, new): one of them None for an add or a delete
        self.store: dict[tuple[str, str], dict[str, Any]] = {}  # (namespace, name) -> object
        self.synced = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"informer-{kind[1]}-{namespace or 'all'}", daemon=True)
        self.lists = 0  # LIST requests made: 1 unless watches expired or failed

    def _relist(self) -> str:
        objects, version = self.client.list_versioned(*self.kind, self.namespace, self.selector)
        self.lists += 1
        fresh = {_where(obj): obj for obj in objects}
        first = not self.synced.is_set()
        old = self.store
        self.store = fresh
        if not first:  # what changed while no watch was open
            for where in old.keys() | fresh.keys():
                if old.get(where) is None or fresh.get(where) is None or _version(old[where]) != _version(fresh[where]):
                    self.changed(old.get(where), fresh.get(where))
        else:
            for obj in fresh.values():
                self.changed(None, obj)
        self.synced.set()
        return version

    def _run(self) -> None:
        version = ""
        while not self.stopping.is_set():
            try:
                if not version:
                    version = self._relist()
                events = self.client.watch(
                    self.kind[0],
                    self.kind[1],
                    namespace=self.namespace,
                    selector=self.selector,
                    resource_version=version,
                    seconds=WATCH_SECONDS,
                )
                for kind, obj in events:
                    version = _version(obj) or version
                    if kind == "BOOKMARK":
                        continue
                    where = _where(obj)
                    old = self.store.get(where)
                    if kind == "DELETED":
                        self.store.pop(where, None)
                        self.changed(old, None)
                    else:
                        self.store[where] = obj
                        self.changed(old, obj)
                    if self.stopping.is_set():
                        return
            except kube.ApiError as exc:
                if exc.status == 410:
                    version = ""  # too old to resume: list again
                    continue
                log.warning("watch %s %s: %s; retrying", self.kind[1], self.namespace or "*", exc.message)
                version = ""
                self.stopping.wait(RETRY_SECONDS)
            except Exception:  # an outage (connection refused, reset, timeout): list again after a pause
                log.warning("watch %s %s failed; retrying", self.kind[1], self.namespace or "*", exc_info=True)
                version = ""
                self.stopping.wait(RETRY_SECONDS)


class ChildCache:
    """Every watched child, by (namespace, platform); ``on_change`` hears of each change after the first list."""

    def __init__(self, client: kube.Kube, namespaces: tuple[str, ...] | None, on_change: OnChange) -> None:
        self.client = client
        self.namespaces: tuple[str | None, ...] = tuple(namespaces) if namespaces else (None,)
        self.on_change = on_change
        self._lock = threading.Lock()
        self._index: dict[tuple[str, str], dict[Key, dict[str, Any]]] = {}
        self._policies: dict[tuple[str, str], dict[str, Any]] = {}
        self.informers: dict[tuple[str, str], list[Informer]] = {}
        self.unserved: set[str] = set()

    def start(self) -> None:
        """An informer for every served kind (and for ScalingPolicies); kinds not served are retried by
        ``refresh_kinds``."""
        self.refresh_kinds()
        self._add(POLICY, None)

    def refresh_kinds(self) -> None:
        """Start informers for kinds the server has come to serve (a CRD installed after start-up)."""
        unserved = set()
        for api_version, kind in render.KINDS:
            if (api_version, kind) in self.informers:
                continue
            if self.client.served(api_version, kind):
                self._add((api_version, kind), labels.PLATFORM_LABEL)
            else:
                unserved.add(f"{api_version}/{kind}")
        self.unserved = unserved

    def _add(self, kind: tuple[str, str], selector: str | None) -> None:
        informers = [Informer(self.client, kind, ns, selector, self._changed) for ns in self.namespaces]
        self.informers[kind] = informers
        for informer in informers:
            informer.thread.start()

    def stop(self) -> None:
        for informers in self.informers.values():
            for informer in informers:
                informer.stopping.set()

    def synced(self) -> bool:
        return all(i.synced.is_set() for informers in self.informers.values() for i in informers)

    def wait_synced(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        for informers in list(self.informers.values()):
            for informer in informers:
                if not informer.synced.wait(max(0.0, deadline - time.monotonic())):
                    return False
        return True

    def _changed(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        namespace = obj["metadata"].get("namespace") or ""
        if (obj["apiVersion"], obj["kind"]) == POLICY:
            with self._lock:
                where = (namespace, obj["metadata"]["name"])
                if new is None:
                    self._policies.pop(where, None)
                else:
                    self._policies[where] = new
            refs = {_platform_ref(o) for o in (old, new) if o is not None}
        else:
            key = compare.object_key(obj)
            with self._lock:
                for platform in {_platform(o) for o in (old, new) if o is not None}:
                    self._index.get((namespace, platform), {}).pop(key, None)
                if new is not None:
                    self._index.setdefault((namespace, _platform(new)), {})[key] = new
            refs = {_platform(o) for o in (old, new) if o is not None}
        synced = all(i.synced.is_set() for i in self.informers.get((obj["apiVersion"], obj["kind"]), []))
        if synced:  # the first list of a kind is the starting point, not a change
            for platform in refs - {""}:
                self.on_change(namespace, platform)

    def children(self, namespace: str, platform: str) -> dict[Key, dict[str, Any]]:
        with self._lock:
            return dict(self._index.get((namespace, platform), {}))

    def policies(self, namespace: str) -> list[dict[str, Any]]:
        with self._lock:
            return [body for (ns, _), body in self._policies.items() if ns == namespace]

    def requests(self) -> int:
        """LIST requests the informers made (watches aside): constant unless watches expire or fail."""
        return sum(i.lists for informers in self.informers.values() for i in informers)


def _where(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["metadata"].get("namespace") or "", obj["metadata"]["name"]


def _version(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _platform(obj: dict[str, Any]) -> str:
    return str(((obj.get("metadata") or {}).get("labels") or {}).get(labels.PLATFORM_LABEL) or "")


def _platform_ref(obj: dict[str, Any]) -> str:
    return str((obj.get("spec") or {}).get("platformRef") or "")
