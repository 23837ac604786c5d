"""Where the API server is and how to talk to it: in a pod from its ServiceAccount, elsewhere from a
kubeconfig (certificates, tokens, token files, basic auth and exec credential plugins)."""

from __future__ import annotations

import base64
import json
import os
import pathlib
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import yaml

TIMEOUT = 30  # seconds an exec credential plugin may take
SERVICE_ACCOUNT = pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_REREAD_SECONDS = 60  # a projected ServiceAccount token is rotated by the kubelet: read it again


class ConfigError(ValueError):
    """The kubeconfig cannot be used: missing, not YAML, or without a usable context."""


class Credentials:
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


def in_cluster() -> Credentials:
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise ConfigError("not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set")
    token = SERVICE_ACCOUNT / "token"
    context = _tls(str(SERVICE_ACCOUNT / "ca.crt"), None, None, insecure=False)
    host = f"[{host}]" if ":" in host else host
    return Credentials(
        f"https://{host}:{port}",
        context,
        _reread(lambda: f"Bearer {token.read_text().strip()}", TOKEN_REREAD_SECONDS),
    )


def load(kubeconfig: pathlib.Path | None) -> Credentials:
    """The credentials of ``kubeconfig``, or of this pod's ServiceAccount when it is None. Anything
    wrong with the file (an exec plugin that fails included: it runs now) is a ``ConfigError`` naming it."""
    if kubeconfig is None:
        return in_cluster()
    try:
        credentials = _from_kubeconfig(kubeconfig)
        credentials.header()
    except (ConfigError, yaml.YAMLError, OSError, TypeError, KeyError, ValueError, ssl.SSLError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{kubeconfig}: not a usable kubeconfig: {reason}") from None
    return credentials


def _named(config: Mapping[str, Any], section: str, name: str) -> dict[str, Any]:
    for entry in config.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            return dict(entry.get(section[:-1]) or {})
    raise ConfigError(f"{section[:-1]} {name!r} is not in {section}")


def _from_kubeconfig(path: pathlib.Path) -> Credentials:
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
    return Credentials(str(server), tls, _authorization(user, path.parent))


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
