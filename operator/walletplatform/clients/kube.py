"""A thin Kubernetes client over urllib3: server-side apply under a named field manager, get, list (in
pages), watch, delete, status patches. Every call has a timeout; errors surface as ``ApiError`` with the
server's message, which names the field path for validation failures.

Its own, not the official client: the operator needs a dozen REST calls, and importing ``kubernetes``
(its 800 generated model modules, which Kopf also imports when it is installed) cost the operator
about 20 MB of its memory limit and a second of start-up."""

from __future__ import annotations

import base64
import builtins
import contextlib
import json
import os
import pathlib
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

import urllib3
import yaml

from walletplatform.models import common
from walletplatform.reconcile import compare

TIMEOUT = 30
PAGE = 500  # objects per page of a list: a relist of thousands of objects is decoded a page at a time
SERVICE_ACCOUNT = pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_REREAD_SECONDS = 60  # a projected ServiceAccount token is rotated by the kubelet: read it again


class ApiError(RuntimeError):
    """An API request failed; ``status`` is the HTTP status, ``message`` the server's explanation."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class ConfigError(ValueError):
    """The kubeconfig cannot be used: missing, not YAML, or without a usable context."""


class _Credentials:
    """Where the API server is, how to trust it, and the Authorization header to send (read again when
    it can change: a token file, an exec plugin's token at its expiry)."""

    def __init__(self, server: str, context: ssl.SSLContext, header: Callable[[], str | None]) -> None:
        self.server = server.rstrip("/")
        self.context = context
        self.header = header


def _tls(
    ca_file: str | None, ca_data: bytes | None, cert: tuple[bytes, bytes] | None, *, insecure: bool
) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif ca_file or ca_data:
        context.load_verify_locations(cafile=ca_file, cadata=ca_data.decode() if ca_data else None)
    if cert is not None:
        # ssl loads a certificate and key from files only: private ones, removed once read.
        with tempfile.TemporaryDirectory(prefix="kube-tls-") as folder:
            crt, key = pathlib.Path(folder) / "tls.crt", pathlib.Path(folder) / "tls.key"
            for path, data in ((crt, cert[0]), (key, cert[1])):
                path.touch(mode=0o600)
                path.write_bytes(data)
            context.load_cert_chain(str(crt), str(key))
    return context


def _reread(read: Callable[[], str], seconds: float) -> Callable[[], str | None]:
    """``read()``'s answer, read again after ``seconds``."""
    state: dict[str, Any] = {"at": -seconds, "value": None}
    lock = threading.Lock()

    def header() -> str | None:
        with lock:
            if time.monotonic() - state["at"] >= seconds:
                state["value"], state["at"] = read(), time.monotonic()
            return str(state["value"])

    return header


def _in_cluster() -> _Credentials:
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise ConfigError("not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set")
    token = SERVICE_ACCOUNT / "token"
    context = _tls(str(SERVICE_ACCOUNT / "ca.crt"), None, None, insecure=False)
    host = f"[{host}]" if ":" in host else host
    return _Credentials(
        f"https://{host}:{port}",
        context,
        _reread(lambda: f"Bearer {token.read_text().strip()}", TOKEN_REREAD_SECONDS),
    )


def _named(config: Mapping[str, Any], section: str, name: str) -> dict[str, Any]:
    for entry in config.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            return dict(entry.get(section[:-1]) or {})
    raise ConfigError(f"{section[:-1]} {name!r} is not in {section}")


def _from_kubeconfig(path: pathlib.Path) -> _Credentials:
    if not path.is_file():
        raise ConfigError("no such file")
    config = yaml.safe_load(path.read_text())
    if not isinstance(config, dict):
        raise ConfigError("not a mapping")
    current = config.get("current-context")
    if not current:
        raise ConfigError("no current-context")
    context = _named(config, "contexts", str(current))
    cluster = _named(config, "clusters", str(context.get("cluster") or ""))
    user = _named(config, "users", str(context.get("user") or "")) if context.get("user") else {}
    server = cluster.get("server")
    if not server:
        raise ConfigError(f"cluster {context.get('cluster')!r} has no server")

    def local(name: str) -> str | None:  # a file named relative to the kubeconfig
        value = cluster.get(name) or user.get(name)
        return str(path.parent / str(value)) if value else None

    def data(name: str) -> bytes | None:
        value = cluster.get(f"{name}-data") or user.get(f"{name}-data")
        if value:
            return base64.b64decode(value)
        file = local(name)
        return pathlib.Path(file).read_bytes() if file else None

    crt, key = data("client-certificate"), data("client-key")
    if (crt is None) != (key is None):
        raise ConfigError(f"user {context.get('user')!r} has a client certificate without its key, or a key alone")
    tls = _tls(
        None,
        data("certificate-authority"),
        (crt, key) if crt is not None and key is not None else None,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
    )
    return _Credentials(str(server), tls, _authorization(user, path.parent))


def _authorization(user: Mapping[str, Any], folder: pathlib.Path) -> Callable[[], str | None]:
    if user.get("token"):
        return lambda: f"Bearer {user['token']}"
    if user.get("tokenFile"):
        token = folder / str(user["tokenFile"])
        return _reread(lambda: f"Bearer {token.read_text().strip()}", TOKEN_REREAD_SECONDS)
    if user.get("username"):
        basic = base64.b64encode(f"{user['username']}:{user.get('password') or ''}".encode()).decode()
        return lambda: f"Basic {basic}"
    if user.get("exec"):
        return _exec_token(dict(user["exec"]))
    if user.get("auth-provider"):
        raise ConfigError("auth-provider is not supported: use an exec credential plugin")
    return lambda: None


def _exec_token(spec: dict[str, Any]) -> Callable[[], str | None]:
    """The token of a client-go credential plugin (``users[].user.exec``), run again when it expires."""
    command = spec.get("command")
    if not command:
        raise ConfigError("exec: no command")
    state: dict[str, Any] = {"token": None, "until": 0.0}
    lock = threading.Lock()

    def header() -> str | None:
        with lock:
            if state["token"] is None or time.time() >= state["until"]:
                info = {
                    "apiVersion": spec.get("apiVersion") or "client.authentication.k8s.io/v1",
                    "kind": "ExecCredential",
                    "spec": {"interactive": False},
                }  # what client-go tells a plugin: non-interactive, and the protocol version
                env = {
                    **os.environ,
                    "KUBERNETES_EXEC_INFO": json.dumps(info),
                    **{e["name"]: e["value"] for e in spec.get("env") or []},
                }
                try:
                    result = subprocess.run(
                        [str(command), *map(str, spec.get("args") or [])],
                        capture_output=True, text=True, env=env, timeout=TIMEOUT, check=False,
                    )  # fmt: skip
                except subprocess.TimeoutExpired:
                    raise ConfigError(f"exec {command}: no credential after {TIMEOUT}s") from None
                if result.returncode != 0:
                    raise ConfigError(f"exec {command}: exit status {result.returncode}: {result.stderr.strip()}")
                try:
                    status = (json.loads(result.stdout) or {}).get("status") or {}
                except (ValueError, AttributeError):
                    raise ConfigError(f"exec {command}: not an ExecCredential: {result.stdout[:200]!r}") from None
                if not status.get("token"):
                    raise ConfigError(f"exec {command}: no status.token (client certificates are not supported)")
                expiry = status.get("expirationTimestamp")
                until = time.time() + 3600
                if expiry:
                    until = datetime.fromisoformat(str(expiry).replace("Z", "+00:00")).timestamp() - 30
                state["token"], state["until"] = status["token"], until
            return f"Bearer {state['token']}"

    return header


def _message(status: int, body: bytes) -> ApiError:
    message = body.decode(errors="replace").strip() or f"HTTP {status}"
    with contextlib.suppress(TypeError, ValueError, KeyError):
        message = json.loads(body)["message"]
    return ApiError(status, message)


class Kube:
    """Typed entry points used by the operator, the demo and the tests."""

    def __init__(self, kubeconfig: pathlib.Path | None = None) -> None:
        if kubeconfig is None:
            self._credentials = _in_cluster()
        else:
            try:
                self._credentials = _from_kubeconfig(kubeconfig)
                self._credentials.header()  # an exec plugin runs now: its failure is the kubeconfig's
            except (ConfigError, yaml.YAMLError, OSError, TypeError, KeyError, ValueError, ssl.SSLError) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise ConfigError(f"{kubeconfig}: not a usable kubeconfig: {reason}") from None
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
