"""What the operator owns, kept in memory from watches: the informer pattern.

One informer per child kind the renderer emits (and per watched namespace, or cluster-wide) lists the
objects carrying the platform label once, then watches them from that list's resourceVersion; a watch
that ends is resumed from the last version seen, and one whose version expired (410) lists again.
The objects are indexed by (namespace, platform), so a reconcile reads its children from memory
instead of one LIST per kind per platform, and every change after the first list (a child edited or
deleted by hand, or changed by us) calls ``on_change(namespace, platform)``: the operator reconciles
that platform within a second instead of at the next resync. ScalingPolicies are watched the same way
(unlabelled: every policy of the watched namespaces), for the floors they own, and so are the
WalletPlatforms themselves: a drift repair and a resync read the platform from memory, so a pass over
any number of unchanged platforms sends no request at all."""

from __future__ import annotations

import json
import logging
import sys
import threading
import zlib
from collections.abc import Callable
from typing import Any, NamedTuple

from walletplatform import API_GROUP, API_VERSION, render
from walletplatform.clients import kube
from walletplatform.render import labels

log = logging.getLogger(__name__)
POLICY = (f"{API_GROUP}/{API_VERSION}", "ScalingPolicy")
PLATFORM = (f"{API_GROUP}/{API_VERSION}", "WalletPlatform")
HPA = ("autoscaling/v2", "HorizontalPodAutoscaler")
WATCH_SECONDS = 300
RETRY_SECONDS = 2.0
Key = tuple[str, str, str]  # (apiVersion, kind, name), compare.object_key
OnChange = Callable[[str, str], None]


# The kinds whose status the platform's own status reads (status.Observed): their status changes
# reconcile the platform. Of the others only what we write counts (an HPA's or a PDB's status moves
# with every pod and every controller sync: no reason to reconcile).
STATUS_READ = {
    ("apps/v1", "Deployment"),
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("postgresql.cnpg.io/v1", "Pooler"),
    ("redis.redis.opstreelabs.in/v1beta2", "RedisCluster"),
}


class Seen(NamedTuple):
    """What an informer remembers of one object: enough to tell a change and to un-index it."""

    version: str
    platform: str
    shape: int  # a hash of what counts as a change (everything but the status, for most kinds)


# (kind, (namespace, name), platform it had or None, object now or None, whether the change counts)
Changed = Callable[[tuple[str, str], tuple[str, str], "str | None", "dict[str, Any] | None", bool], None]


class Informer:
    """List then watch one kind in one namespace (None: every namespace). Each change is handed to
    ``changed(kind, (namespace, name), platform it had or None, object now or None)``; the informer
    itself keeps only each object's resourceVersion and platform."""

    def __init__(
        self,
        client: kube.Kube,
        kind: tuple[str, str],
        namespace: str | None,
        selector: str | None,
        *,
        platform_of: Callable[[dict[str, Any]], str],
        changed: Changed,
    ) -> None:
        self.client, self.kind, self.namespace, self.selector = client, kind, namespace, selector
        self.platform_of, self.changed = platform_of, changed
        self.seen: dict[tuple[str, str], Seen] = {}
        self.synced = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"informer-{kind[1]}-{namespace or 'all'}", daemon=True)

    def _update(self, obj: dict[str, Any]) -> None:
        where = _where(obj)
        old = self.seen.get(where)
        new = Seen(_version(obj), self.platform_of(obj), _shape(obj) if self.kind not in STATUS_READ else 0)
        if old != new:
            self.seen[where] = new
            counts = old is None or old.platform != new.platform or old.shape != new.shape or not new.shape
            self.changed(self.kind, where, old.platform if old else None, obj, counts)

    def _delete(self, where: tuple[str, str]) -> None:
        old = self.seen.pop(where, None)
        if old is not None:
            self.changed(self.kind, where, old.platform, None, True)

    def _relist(self) -> str:
        """List again (a page at a time, so a relist of thousands is never decoded at once)."""
        listed: set[tuple[str, str]] = set()
        version = ""
        for page, at in self.client.pages(*self.kind, self.namespace, self.selector):
            version = at
            for obj in page:
                listed.add(_where(obj))
                self._update(obj)
        for where in set(self.seen) - listed:  # deleted while no watch was open
            self._delete(where)
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
                    if kind == "DELETED":
                        self._delete(_where(obj))
                    elif kind != "BOOKMARK":
                        self._update(obj)
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
    """Every watched child, by (namespace, platform), and every WalletPlatform and ScalingPolicy, by
    (namespace, name), kept small: without ``managedFields`` (but for HPAs, whose minReplicas owner the
    reconcile reads) and compressed, so 500 platforms and their 26,500 children fit the chart's memory
    limit. ``on_change`` hears of each change after the first list."""

    def __init__(self, client: kube.Kube, namespaces: tuple[str, ...] | None, on_change: OnChange) -> None:
        self.client = client
        self.namespaces: tuple[str | None, ...] = tuple(namespaces) if namespaces else (None,)
        self.on_change = on_change
        self._lock = threading.Lock()
        self._index: dict[tuple[str, str], dict[Key, bytes]] = {}
        self._packer = Packer()
        # The ScalingPolicies and WalletPlatforms themselves, whole but packed, by (namespace, name).
        self._bodies: dict[tuple[str, str], dict[tuple[str, str], bytes]] = {POLICY: {}, PLATFORM: {}}
        self.informers: dict[tuple[str, str], list[Informer]] = {}
        self.unserved: set[str] = set()

    def start(self) -> None:
        """An informer for every served kind (and for ScalingPolicies); kinds not served are retried by
        ``refresh_kinds``."""
        self.refresh_kinds()
        if POLICY not in self.informers:  # start may be retried after a failure
            self._add(POLICY, None, _platform_ref)
        if PLATFORM not in self.informers:
            self._add(PLATFORM, None, lambda _: "")

    def refresh_kinds(self) -> None:
        """Start informers for kinds the server has come to serve (a CRD installed after start-up)."""
        unserved = set()
        for api_version, kind in render.KINDS:
            if (api_version, kind) in self.informers:
                continue
            if self.client.served(api_version, kind):
                self._add((api_version, kind), labels.PLATFORM_LABEL, _platform)
            else:
                unserved.add(f"{api_version}/{kind}")
        self.unserved = unserved

    def _add(self, kind: tuple[str, str], selector: str | None, platform_of: Callable[[dict[str, Any]], str]) -> None:
        informers = [
            Informer(self.client, kind, ns, selector, platform_of=platform_of, changed=self._changed)
            for ns in self.namespaces
        ]
        self.informers[kind] = informers
        for informer in informers:
            informer.thread.start()

    def stop(self) -> None:
        for informers in self.informers.values():
            for informer in informers:
                informer.stopping.set()

    def synced(self) -> bool:
        return all(i.synced.is_set() for informers in self.informers.values() for i in informers)

    def _changed(
        self,
        kind: tuple[str, str],
        where: tuple[str, str],
        old: str | None,
        new: dict[str, Any] | None,
        counts: bool = True,
    ) -> None:
        namespace, name = where
        platforms = {p for p in (old, _platform_ref(new) if kind == POLICY and new else None) if p}
        with self._lock:
            if kind in self._bodies:
                if new is None:
                    self._bodies[kind].pop(where, None)
                else:
                    self._bodies[kind][where] = self._packer.pack(new)
            else:
                key = (kind[0], kind[1], name)
                if old is not None:
                    self._index.get((namespace, old), {}).pop(key, None)
                if new is not None:
                    platforms.add(_platform(new))
                    self._index.setdefault((namespace, _platform(new)), {})[key] = self._packer.pack(new)
        if kind == PLATFORM:  # Kopf handles the platform's own changes; this is its latest body
            return
        if counts and all(i.synced.is_set() for i in self.informers.get(kind, [])):  # the first list is no change
            for platform in sorted(platforms - {""}):
                self.on_change(namespace, platform)

    def children(self, namespace: str, platform: str) -> dict[Key, dict[str, Any]]:
        with self._lock:
            packed = dict(self._index.get((namespace, platform), {}))
        return {key: self._packer.unpack(key[:2], blob) for key, blob in packed.items()}

    def platform(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The WalletPlatform as last seen (None when it is gone)."""
        with self._lock:
            blob = self._bodies[PLATFORM].get((namespace, name))
        return None if blob is None else self._packer.unpack(PLATFORM, blob)

    def platform_keys(self) -> list[tuple[str, str]]:
        """Every WalletPlatform of the watched namespaces, as (namespace, name), sorted."""
        with self._lock:
            return sorted(self._bodies[PLATFORM])

    def policies(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """The ScalingPolicies of ``namespace`` (of every watched namespace when None)."""
        with self._lock:
            blobs = [blob for (ns, _), blob in self._bodies[POLICY].items() if namespace in (None, ns)]
        return [self._packer.unpack(POLICY, blob) for blob in blobs]


class Packer:
    """Objects as compressed JSON, each kind against a preset dictionary: the first object of its kind
    the cache keeps. Every platform's Deployments (Services, HPAs...) come from one template, so an
    object compresses to its differences from that one: about 4x smaller than compressing it alone
    (8 KB instead of 35 KB for the dev platform's 53 objects), for about 45 us more per object."""

    def __init__(self) -> None:
        self._dictionaries: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()

    def _dictionary(self, kind: tuple[str, str], text: bytes) -> bytes:
        with self._lock:
            return self._dictionaries.setdefault(kind, text[-32768:])  # zlib's window: 32 KiB

    def pack(self, obj: dict[str, Any]) -> bytes:
        kind = (str(obj.get("apiVersion")), str(obj.get("kind")))
        if kind != HPA:
            metadata = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
            obj = {**obj, "metadata": metadata}
        text = json.dumps(obj, separators=(",", ":")).encode()
        compressor = zlib.compressobj(6, zdict=self._dictionary(kind, text))
        return compressor.compress(text) + compressor.flush()

    def unpack(self, kind: tuple[str, str], blob: bytes) -> dict[str, Any]:
        with self._lock:
            dictionary = self._dictionaries[kind]
        decompressor = zlib.decompressobj(zdict=dictionary)
        obj: dict[str, Any] = json.loads(decompressor.decompress(blob) + decompressor.flush())
        return obj


def _shape(obj: dict[str, Any]) -> int:
    """What a change of a kind whose status we do not read must touch: anything but the status and the
    server's bookkeeping (resourceVersion, managedFields). Never 0 (0 means: every change counts)."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in ("resourceVersion", "managedFields")}
    rest = {k: v for k, v in obj.items() if k not in ("status", "metadata")}
    return hash(json.dumps([meta, rest], sort_keys=True, default=str)) or 1


# Namespaces, names and platforms repeat across thousands of children (every platform's children have
# the same names): interned, each is kept once, not once per decoded event.
def _where(obj: dict[str, Any]) -> tuple[str, str]:
    return sys.intern(obj["metadata"].get("namespace") or ""), sys.intern(obj["metadata"]["name"])


def _version(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _platform(obj: dict[str, Any]) -> str:
    return sys.intern(str(((obj.get("metadata") or {}).get("labels") or {}).get(labels.PLATFORM_LABEL) or ""))


def _platform_ref(obj: dict[str, Any]) -> str:
    return str((obj.get("spec") or {}).get("platformRef") or "")
