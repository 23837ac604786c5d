"""A thin Kubernetes client over urllib3: server-side apply under a named field manager, get, list (in
pages), watch, delete, status patches. Every call has a timeout; errors surface as ``ApiError`` with the
server's message, which names the field path for validation failures. Where the server is and how to
authenticate come from ``kubeconfig``.

Its own, not the official client: the operator needs a dozen REST calls, and importing ``kubernetes``
(its 800 generated model modules, which Kopf also imports when it is installed) cost the operator
about 20 MB of its memory limit and a second of start-up."""

from __future__ import annotations

import builtins
import contextlib
import json
import pathlib
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any

import urllib3

from walletplatform.clients import kubeconfig as kubeconfig_
from walletplatform.models import common
from walletplatform.reconcile import compare

TIMEOUT = 30
PAGE = 500  # objects per page of a list: a relist of thousands of objects is decoded a page at a time


class ApiError(RuntimeError):
    """An API request failed; ``status`` is the HTTP status, ``message`` the server's explanation."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def _message(status: int, body: bytes) -> ApiError:
    message = body.decode(errors="replace").strip() or f"HTTP {status}"
    with contextlib.suppress(TypeError, ValueError, KeyError):
        message = json.loads(body)["message"]
    return ApiError(status, message)


class Kube:
    """Typed entry points used by the operator, the demo and the tests."""

    def __init__(self, kubeconfig: pathlib.Path | None = None) -> None:
        self._credentials = kubeconfig_.load(kubeconfig)
        # Thread-safe; a connection per concurrent request (the operator applies a bounded few at once).
        self._http = urllib3.PoolManager(maxsize=16, ssl_context=self._credentials.context)
        self._discovery_lock = threading.Lock()
        self._discovered: dict[str, dict[str, tuple[str, bool]] | None] = {}

    # -- HTTP -------------------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, object] | None = None,
        body: object = None,
        *,
        content_type: str = "application/json",
        accept: str = "application/json",
        timeout: float = TIMEOUT,
        stream: bool = False,
    ) -> urllib3.BaseHTTPResponse:
        headers = {"Accept": accept, "User-Agent": "walletplatform"}
        authorization = self._credentials.header()
        if authorization:
            headers["Authorization"] = authorization
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = content_type
        url = self._credentials.server + path
        pairs = {k: v for k, v in (query or {}).items() if v is not None}
        if pairs:
            url += "?" + urllib.parse.urlencode(
                {k: str(v).lower() if isinstance(v, bool) else v for k, v in pairs.items()}
            )
        response = self._http.request(
            method,
            url,
            body=data,
            headers=headers,
            timeout=urllib3.Timeout(connect=TIMEOUT, read=timeout),
            preload_content=not stream,
            redirect=False,
        )
        if response.status >= 400:
            raw = response.read() if stream else response.data
            response.release_conn()
            raise _message(response.status, raw)
        return response

    def _json(
        self, method: str, path: str, query: Mapping[str, object] | None = None, body: object = None, **options: Any
    ) -> dict[str, Any]:
        reply: dict[str, Any] = json.loads(self._send(method, path, query, body, **options).data)
        return reply

    # -- discovery --------------------------------------------------------------------------------------

    def _resources(self, api_version: str, refresh: bool) -> dict[str, tuple[str, bool]] | None:
        """Kind -> (plural, namespaced) of one group/version; None when the server does not serve it."""
        with self._discovery_lock:
            if refresh or api_version not in self._discovered:
                prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
                try:
                    listed = self._json("GET", prefix).get("resources") or []
                    self._discovered[api_version] = {
                        r["kind"]: (r["name"], bool(r.get("namespaced")))
                        for r in listed
                        if "/" not in r["name"]  # subresources (deployments/scale) are not kinds
                    }
                except ApiError as exc:
                    if exc.status != 404:
                        raise
                    self._discovered[api_version] = None
            return self._discovered[api_version]

    def _path(self, api_version: str, kind: str, namespace: str | None, name: str | None = None) -> str:
        """The REST path of ``kind`` (of one object when ``name``); a kind served since the last look (a
        CRD just installed) is looked up again once; ``ApiError`` 404 when it is not served."""
        resources = self._resources(api_version, refresh=False)
        if resources is None or kind not in resources:
            resources = self._resources(api_version, refresh=True)
        if resources is None or kind not in resources:
            raise ApiError(404, f"the server does not serve {kind} in {api_version}")
        plural, namespaced = resources[kind]
        path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        if namespaced and namespace:
            path += f"/namespaces/{namespace}"
        path += f"/{plural}"
        return path + (f"/{name}" if name else "")

    def invalidate_discovery(self) -> None:
        """Forget cached discovery (after installing CRDs)."""
        with self._discovery_lock:
            self._discovered.clear()

    def served(self, api_version: str, kind: str) -> bool:
        """Whether the API server serves this kind (its CRD is installed)."""
        try:
            self._path(api_version, kind, None)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    @staticmethod
    def _where(obj: common.Manifest) -> tuple[str, str, str, str | None]:
        meta = obj["metadata"]
        assert isinstance(meta, dict)
        namespace = meta.get("namespace")
        return str(obj["apiVersion"]), str(obj["kind"]), str(meta["name"]), str(namespace) if namespace else None

    # -- verbs ------------------------------------------------------------------------------------------

    def apply(self, obj: common.Manifest, manager: str, *, dry_run: bool = False, force: bool = True) -> dict[str, Any]:
        """Server-side apply of one object under ``manager``; returns the object the server holds."""
        api_version, kind, name, namespace = self._where(obj)
        query = {
            "fieldManager": manager,
            "force": force,
            "fieldValidation": "Strict",
            "dryRun": "All" if dry_run else None,
        }
        return self._json(
            "PATCH",
            self._path(api_version, kind, namespace, name),
            query,
            obj,
            content_type="application/apply-patch+yaml",
        )

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            return self._json("GET", self._path(api_version, kind, namespace, name))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, selector: str | None = None
    ) -> list[dict[str, Any]]:
        return self.list_versioned(api_version, kind, namespace, selector)[0]

    def pages(
        self, api_version: str, kind: str, namespace: str | None = None, selector: str | None = None
    ) -> Iterator[tuple[builtins.list[dict[str, Any]], str]]:
        """The objects of a list a page of at most ``PAGE`` at a time, each with the collection's
        resourceVersion (one consistent snapshot: where a watch of the same objects starts). Built-in
        kinds' list items carry no apiVersion/kind; every item gets its own."""
        path = self._path(api_version, kind, namespace)
        token = None
        while True:
            answer = self._json("GET", path, {"labelSelector": selector, "limit": PAGE, "continue": token})
            items = [{"apiVersion": api_version, "kind": kind, **item} for item in answer.get("items") or []]
            meta = answer.get("metadata") or {}
            yield items, str(meta.get("resourceVersion") or "")
            token = meta.get("continue")
            if not token:
                return

    def list_versioned(
        self, api_version: str, kind: str, namespace: str | None = None, selector: str | None = None
    ) -> tuple[builtins.list[dict[str, Any]], str]:
        """``list``, and the collection's resourceVersion: where a watch of the same objects starts."""
        objects: builtins.list[dict[str, Any]] = []
        version = ""
        for page, at in self.pages(api_version, kind, namespace, selector):
            objects.extend(page)
            version = at
        return objects, version

    def labels_by_name(self, api_version: str, kind: str, namespace: str | None) -> dict[str, dict[str, str]]:
        """The labels of every object of ``kind`` in ``namespace`` by name, from a metadata-only list (the
        API server sends no spec or data: for Secrets it sends no secret)."""
        accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
        answer = self._json("GET", self._path(api_version, kind, namespace), accept=accept)
        return {str(i["metadata"]["name"]): dict(i["metadata"].get("labels") or {}) for i in answer.get("items") or []}

    def watch(
        self,
        api_version: str,
        kind: str,
        *,
        namespace: str | None,
        selector: str | None,
        resource_version: str,
        seconds: int,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(event type, object) from ``resource_version`` on, for at most ``seconds`` (the server ends the
        watch then), bookmarks included. ApiError 410 when that version is too old to watch from (list
        again)."""
        query = {
            "watch": True, "labelSelector": selector, "resourceVersion": resource_version,
            "timeoutSeconds": seconds, "allowWatchBookmarks": True,
        }  # fmt: skip
        response = self._send(
            "GET", self._path(api_version, kind, namespace), query, timeout=seconds + TIMEOUT, stream=True
        )
        try:
            pending = b""
            for chunk in response.stream(64 * 1024, decode_content=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    raw = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        raise ApiError(int(raw.get("code") or 500), str(raw.get("message") or raw))
                    yield str(event.get("type")), {"apiVersion": api_version, "kind": kind, **raw}
        finally:
            response.release_conn()

    def create(self, obj: common.Manifest, *, dry_run: bool = False) -> dict[str, Any]:
        """POST to the collection: the object may have ``generateName`` instead of a name (an Event)."""
        meta = obj["metadata"]
        assert isinstance(meta, dict)
        namespace = str(meta["namespace"]) if meta.get("namespace") else None
        api_version, kind = str(obj["apiVersion"]), str(obj["kind"])
        query = {"fieldValidation": "Strict", "dryRun": "All" if dry_run else None}
        return self._json("POST", self._path(api_version, kind, namespace), query, obj)

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
        self._delete(api_version, kind, name, namespace, {})

    def delete_now(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
        """Delete with no grace period (what a crashed or evicted-at-once object looks like)."""
        self._delete(api_version, kind, name, namespace, {"gracePeriodSeconds": 0})

    def _delete(self, api_version: str, kind: str, name: str, namespace: str | None, query: dict[str, object]) -> None:
        try:
            self._send("DELETE", self._path(api_version, kind, namespace, name), query)
        except ApiError as exc:
            if exc.status != 404:
                raise

    def patch_status(
        self, api_version: str, kind: str, name: str, namespace: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        """Merge-patch the status subresource (status is the operator's to write, whole)."""
        path = self._path(api_version, kind, namespace, name) + "/status"
        return self._json("PATCH", path, None, {"status": status}, content_type="application/merge-patch+json")

    def merge_status(self, body: dict[str, Any], wanted: dict[str, Any]) -> None:
        """Send what differs between ``body``'s status and ``wanted`` as one merge patch (nothing when
        equal); an object deleted meanwhile has no status to write and is not an error."""
        patch = compare.render_merge_patch(body.get("status") or {}, wanted)
        if not patch:
            return
        meta = body["metadata"]
        try:
            self.patch_status(body["apiVersion"], body["kind"], meta["name"], meta["namespace"], patch)
        except ApiError as exc:
            if exc.status != 404:
                raise

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        """PUT with the object's resourceVersion: 409 (ApiError) when someone else wrote it first."""
        api_version, kind, name, namespace = self._where(obj)
        return self._json("PUT", self._path(api_version, kind, namespace, name), None, obj)

    def service_account_token(self, namespace: str, name: str, seconds: int = 3600) -> str:
        """A bound token for a ServiceAccount (TokenRequest API), to act exactly as that account."""
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"audiences": [], "expirationSeconds": seconds},
        }
        path = self._path("v1", "ServiceAccount", namespace, name) + "/token"
        answer = self._json("POST", path, None, request)
        token = (answer.get("status") or {}).get("token")
        if not token:
            raise ApiError(500, f"no token issued for {namespace}/{name}")
        return str(token)
