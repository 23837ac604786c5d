"""The admission webhook: an HTTPS server around ``walletplatform.admission.review``, its certificate,
and the CA bundle in the ValidatingWebhookConfiguration.

Every replica serves (admission does not need the leader lease). The certificate lives in one Secret
of the operator's namespace, so that both replicas behind the Service present the same one: the first
replica to start creates it (a create that loses the race reads the winner's), and the leaf is
re-issued under the same CA a month before it expires, so the CA bundle the API server trusts does not
change under a running replica. The configuration itself is rendered by ``install`` (the chart has the
same object); the operator applies it with its CA bundle at start-up and every hour, which also
repairs a bundle that someone removed."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import http.server
import ipaddress
import json
import logging
import pathlib
import ssl
import tempfile
import threading
import urllib.parse
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from walletplatform import admission, catalog, install
from walletplatform.clients import kube
from walletplatform.controller import metrics
from walletplatform.controller import settings as settings_mod
from walletplatform.models import common

log = logging.getLogger("walletplatform.webhook")
CA_DAYS = 3650
LEAF_DAYS = 365
RENEW_BEFORE = datetime.timedelta(days=30)
CHECK_SECONDS = 3600.0
BODY_LIMIT = 4 * 1024 * 1024  # an object the API server stores is at most 1.5 MiB; twice in an update
MANAGER = settings_mod.OPERATOR_MANAGER


@dataclasses.dataclass(frozen=True)
class Certificate:
    """PEM bytes of the CA and of the serving leaf it signed."""

    ca_crt: bytes
    ca_key: bytes
    tls_crt: bytes
    tls_key: bytes

    def secret_data(self) -> dict[str, common.JsonValue]:
        return {
            key: base64.b64encode(value).decode()
            for key, value in (
                ("ca.crt", self.ca_crt),
                ("ca.key", self.ca_key),
                ("tls.crt", self.tls_crt),
                ("tls.key", self.tls_key),
            )
        }

    @classmethod
    def from_secret(cls, secret: dict[str, Any] | None) -> Certificate | None:
        data = (secret or {}).get("data") or {}
        try:
            return cls(*(base64.b64decode(data[k]) for k in ("ca.crt", "ca.key", "tls.crt", "tls.key")))
        except (KeyError, ValueError, TypeError):
            return None


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    encoding, form = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8
    return key.private_bytes(encoding, form, serialization.NoEncryption())


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def issue(hosts: list[str], now: datetime.datetime, ca: Certificate | None = None) -> Certificate:
    """A serving certificate for ``hosts``, signed by ``ca``'s CA (a new CA when None)."""
    if ca is None:
        ca_key = _key()
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(_name("wallet-operator-webhook-ca"))
            .issuer_name(_name("wallet-operator-webhook-ca"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        ca_crt, ca_key_pem = ca_cert.public_bytes(serialization.Encoding.PEM), _pem(ca_key)
    else:
        ca_crt, ca_key_pem = ca.ca_crt, ca.ca_key
        ca_cert = x509.load_pem_x509_certificate(ca_crt)
        loaded = serialization.load_pem_private_key(ca_key_pem, None)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        ca_key = loaded
    leaf_key = _key()
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_cert.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(min(now + datetime.timedelta(days=LEAF_DAYS), ca_cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return Certificate(ca_crt, ca_key_pem, leaf.public_bytes(serialization.Encoding.PEM), _pem(leaf_key))


def needs(cert: Certificate | None, hosts: list[str], now: datetime.datetime) -> str:
    """'' when ``cert`` serves ``hosts`` for at least RENEW_BEFORE more; else 'ca' (a new CA is needed
    too) or 'leaf' (a new leaf under the same CA)."""
    if cert is None:
        return "ca"
    try:
        ca = x509.load_pem_x509_certificate(cert.ca_crt)
        leaf = x509.load_pem_x509_certificate(cert.tls_crt)
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return "ca"
    if ca.not_valid_after_utc - now < RENEW_BEFORE * 2:
        return "ca"
    served = {str(v) for v in names.get_values_for_type(x509.DNSName)}
    served |= {str(v) for v in names.get_values_for_type(x509.IPAddress)}
    if leaf.issuer != ca.subject or not set(hosts) <= served or leaf.not_valid_after_utc - now < RENEW_BEFORE:
        return "leaf"
    return ""


def ensure_certificate(
    client: kube.Kube, namespace: str, name: str, hosts: list[str], owner: dict[str, Any] | None = None
) -> Certificate:
    """The Secret's certificate, made or renewed first when it does not serve ``hosts`` for a month.
    Optimistic: a replica that loses a create or update race uses what the winner wrote. A new Secret
    is owned by ``owner`` (the chart's webhook Service), so that ``helm uninstall`` takes it along."""
    for _ in range(5):
        secret = client.get("v1", "Secret", name, namespace)
        current = Certificate.from_secret(secret)
        now = datetime.datetime.now(datetime.UTC)
        wanted = needs(current, hosts, now)
        if not wanted:
            assert current is not None
            return current
        fresh = issue(hosts, now, current if wanted == "leaf" else None)
        log.info("webhook certificate: issuing a new %s for %s", "CA and leaf" if wanted == "ca" else "leaf", hosts)
        try:
            if secret is None:
                client.create(
                    {
                        "apiVersion": "v1",
                        "kind": "Secret",
                        "metadata": {
                            "name": name,
                            "namespace": namespace,
                            "labels": dict(install.OPERATOR_LABELS),
                            **({"ownerReferences": [owner]} if owner else {}),
                        },
                        "type": "Opaque",
                        "data": fresh.secret_data(),
                    }
                )
            else:
                client.replace({**secret, "data": fresh.secret_data()})
            return fresh
        except kube.ApiError as exc:
            if exc.status != 409:
                raise
    raise RuntimeError(f"the webhook certificate Secret {namespace}/{name} kept changing under five attempts")


def client_config(settings: settings_mod.Settings) -> dict[str, Any]:
    if settings.webhook_url:
        return {"url": settings.webhook_url.rstrip("/") + admission.PATH}
    config = install.service_client_config(settings.lease_namespace, settings.webhook_name)
    assert isinstance(config, dict)
    return config


def hosts(settings: settings_mod.Settings) -> list[str]:
    """The names the API server checks the certificate against."""
    if settings.webhook_url:
        host = urllib.parse.urlsplit(settings.webhook_url).hostname
        if not host:
            raise ValueError(f"WALLET_WEBHOOK_URL: {settings.webhook_url!r} has no host")
        return [host]
    service = install.webhook_service(settings.webhook_name)
    return [f"{service}.{settings.lease_namespace}.svc", f"{service}.{settings.lease_namespace}.svc.cluster.local"]


def configure(client: kube.Kube, settings: settings_mod.Settings, cert: Certificate) -> None:
    """Apply the ValidatingWebhookConfiguration with the CA that signed ``cert``."""
    config = {**client_config(settings), "caBundle": base64.b64encode(cert.ca_crt).decode()}
    client.apply(install.render_webhook_configuration(config, settings.webhook_name, settings.namespaces), MANAGER)


def _handler(cat: catalog.Catalog) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        timeout = 15  # seconds a connection may idle or take its TLS handshake
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            if urllib.parse.urlsplit(self.path).path != admission.PATH:
                self._send(404, {"message": "not found"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= BODY_LIMIT:
                self._send(413, {"message": f"a review is 1 to {BODY_LIMIT} bytes"})
                return
            try:
                body = json.loads(self.rfile.read(length))
            except ValueError:
                self._send(400, {"message": "the body is not JSON"})
                return
            try:
                answer = admission.review(body, cat)
            except Exception as exc:  # fail closed, with the reason and without a traceback to the client
                log.exception("admission review failed")
                uid = body.get("request", {}).get("uid", "") if isinstance(body, dict) else ""
                answer = {
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "response": {
                        "uid": uid,
                        "allowed": False,
                        "status": {"code": 500, "message": f"the webhook failed: {type(exc).__name__}"},
                    },
                }
                metrics.ADMISSION_REVIEWS.labels(kind="unknown", result="error").inc()
            else:
                request = body.get("request") or {}
                kind = str((request.get("kind") or {}).get("kind", "unknown"))
                allowed = answer["response"]["allowed"]  # type: ignore[index, call-overload]
                metrics.ADMISSION_REVIEWS.labels(kind=kind, result="allowed" if allowed else "refused").inc()
            self._send(200, answer)

        def _send(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:  # one line per review would drown the operator's log
            return

    return Handler


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hangs up or fails the TLS handshake: one quiet line, not a traceback on stderr.
        log.debug("webhook connection from %s failed", client_address, exc_info=True)


class Server:
    """The webhook's HTTPS server; ``ready`` once it serves with a certificate the configuration trusts."""

    def __init__(self, client: kube.Kube, settings: settings_mod.Settings, cat: catalog.Catalog) -> None:
        self.client, self.settings, self.cat = client, settings, cat
        self.ready = threading.Event()
        self._folder = pathlib.Path(tempfile.mkdtemp(prefix="wallet-webhook-"))
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._serving: bytes = b""
        self._httpd: http.server.ThreadingHTTPServer | None = None

    def _load(self, cert: Certificate) -> None:
        """Serve ``cert`` from the next handshake on (an SSLContext takes files)."""
        if cert.tls_crt == self._serving:
            return
        crt, key = self._folder / "tls.crt", self._folder / "tls.key"
        key.touch(mode=0o600)
        key.write_bytes(cert.tls_key)
        crt.write_bytes(cert.tls_crt)
        self._context.load_cert_chain(crt, key)
        self._serving = cert.tls_crt

    def _owner(self) -> dict[str, Any] | None:
        """The chart's webhook Service as an owner reference (None outside the cluster)."""
        if self.settings.webhook_url:
            return None
        name = install.webhook_service(self.settings.webhook_name)
        service = self.client.get("v1", "Service", name, self.settings.lease_namespace)
        if service is None:
            return None
        return {"apiVersion": "v1", "kind": "Service", "name": name, "uid": service["metadata"]["uid"]}

    def refresh(self) -> None:
        """Make sure of the certificate and the configuration once; serve when not serving yet."""
        cert = ensure_certificate(
            self.client,
            self.settings.lease_namespace,
            install.webhook_secret(self.settings.webhook_name),
            hosts(self.settings),
            self._owner(),
        )
        self._load(cert)
        configure(self.client, self.settings, cert)
        if self._httpd is None:
            httpd = _HTTPServer((self.settings.listen_address, self.settings.webhook_port), _handler(self.cat))
            # The handshake happens in each connection's own thread, not in the accepting one.
            httpd.socket = self._context.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
            threading.Thread(target=httpd.serve_forever, daemon=True, name="webhook").start()
            self._httpd = httpd
            log.info("admission webhook serving on %s:%d", self.settings.listen_address, self.settings.webhook_port)
        self.ready.set()

    def run(self, stop: threading.Event) -> None:
        """Refresh now and every CHECK_SECONDS, retrying a failed refresh after 2-60 s, until ``stop``."""
        delay = 2.0
        while not stop.is_set():
            try:
                self.refresh()
            except Exception:  # an API outage or a refused write: logged, counted, retried
                log.exception("admission webhook: certificate or configuration not updated; retrying")
                metrics.LOOP_ERRORS.labels(loop="webhook").inc()
                stop.wait(delay)
                delay = min(delay * 2, 60.0)
                continue
            metrics.LOOP_ITERATIONS.labels(loop="webhook").inc()
            delay = 2.0
            stop.wait(CHECK_SECONDS)

    def start(self, stop: threading.Event) -> Server:
        threading.Thread(target=self.run, args=(stop,), daemon=True, name="webhook-certificate").start()
        return self

    def shutdown(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
