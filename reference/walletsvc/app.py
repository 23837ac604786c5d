"""The reference service's HTTP API, its metrics and its roles.

Every role: ``GET /healthz`` (the process serves), ``GET /readyz`` (its required dependencies answer:
Postgres for the roles that keep wallet data, Redis for notification's queue; Redis as the balance
cache is optional, reported as degraded), ``GET /v1/work`` (a measurable amount of CPU, for load
tests of autoscaling). Metrics on their own port: ``http_requests_total`` and
``http_request_duration_seconds`` (buckets around the catalog's p95 SLO, ``SLO_P95_MS``), and
``transaction_queue_depth`` (transfers in flight) on transaction.

Roles: user (``/v1/users``), account (``/v1/accounts``, balances cached in Redis), transaction
(``/v1/transfers``: compliance check, then the transfer and both balances in one Postgres
transaction, then a notification), payment (``/v1/payments``: a deposit), compliance
(``/v1/checks``), notification (``/v1/notifications`` onto a Redis list), api-gateway (routes
``/v1/<resource>`` to the service that owns it by its Service URL)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
import urllib.error
import urllib.request
from decimal import Decimal, InvalidOperation
from http import server
from typing import Any

import prometheus_client

from walletsvc import settings, store

# api-gateway: the first path segment after /v1/ -> the service that owns it.
ROUTES = {"users": "user", "accounts": "account", "transfers": "transaction", "payments": "payment"}
COMPLIANCE_LIMIT = Decimal("10000")
CACHE_TTL_SECONDS = 30
UPSTREAM_TIMEOUT_SECONDS = 5


def latency_buckets(slo_seconds: float) -> tuple[float, ...]:
    """Histogram buckets that include the SLO itself, so the p95 alert compares against a real edge."""
    factors = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0, 10.0)
    return tuple(sorted({round(slo_seconds * f, 6) for f in factors}))


def burn_cpu(iterations: int) -> str:
    """CPU work per request (PBKDF2 rounds), so that CPU-based autoscaling sees load."""
    if iterations <= 0:
        return ""
    return hashlib.pbkdf2_hmac("sha256", b"wallet", b"reference-service", iterations).hex()[:16]


def route_of(path: str) -> str:
    """The metric label of a path: ids collapsed, so label values stay few."""
    return re.sub(r"/\d+(?=/|$)", "/:id", path.split("?", 1)[0])


def upstream_for(path: str, upstreams: dict[str, str]) -> str | None:
    """api-gateway: the base URL of the service that owns ``path``, or None."""
    match = re.match(r"^/v1/([a-z-]+)", path)
    if not match or match.group(1) not in ROUTES:
        return None
    return upstreams.get(ROUTES[match.group(1)])


class RequestError(Exception):
    """Ends a request with ``status`` and a JSON body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _amount(body: dict[str, Any], key: str = "amount") -> Decimal:
    try:
        value = Decimal(str(body[key]))
    except (KeyError, InvalidOperation):
        raise RequestError(400, {"error": f"{key}: a decimal amount is required"}) from None
    if not value.is_finite() or value <= 0 or value != value.quantize(Decimal("0.01")):
        raise RequestError(400, {"error": f"{key}: {body[key]!r} is not a positive amount with at most 2 decimals"})
    return value


def _id(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise RequestError(400, {"error": f"{key}: a positive integer id is required"})
    return value


class Wallet:
    """One role's behaviour over its dependencies; the HTTP handler calls ``handle``."""

    def __init__(self, config: settings.Settings, registry: prometheus_client.CollectorRegistry) -> None:
        self.config = config
        self.db = store.Database(config.postgres) if config.postgres else None
        self.cache = (
            store.Cache(config.redis, config.redis_password, cluster=config.redis_cluster) if config.redis else None
        )
        self.requests = prometheus_client.Counter(
            "http_requests_total", "HTTP requests", ["method", "route", "code"], registry=registry
        )
        self.latency = prometheus_client.Histogram(
            "http_request_duration_seconds", "HTTP request latency", ["method", "route"],
            buckets=latency_buckets(config.slo_p95_seconds), registry=registry,
        )  # fmt: skip
        self.queue = prometheus_client.Gauge(
            "transaction_queue_depth", "Transfers in flight", registry=registry
        ) if config.role == "transaction" else None  # fmt: skip

    # -- health ----------------------------------------------------------------------------------
    def readiness(self) -> tuple[bool, dict[str, str]]:
        checks: dict[str, str] = {}
        ready = True
        if self.db is not None:
            try:
                self.db.ping()
                checks["postgres"] = "ok"
            except Exception as exc:
                checks["postgres"] = (
                    f"unavailable: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
                )
                ready = False
        if self.cache is not None:
            try:
                self.cache.ping()
                checks["redis"] = "ok"
            except Exception as exc:
                required = self.config.role == "notification"
                checks["redis"] = f"{'unavailable' if required else 'degraded'}: {exc}"
                ready = ready and not required
        return ready, checks

    # -- requests --------------------------------------------------------------------------------
    def handle(self, method: str, path: str, body: dict[str, Any], raw: bytes) -> tuple[int, dict[str, Any]]:
        if path == "/healthz":
            return 200, {"status": "ok", "role": self.config.role}
        if path == "/readyz":
            ready, checks = self.readiness()
            return (200 if ready else 503), {"ready": ready, "checks": checks}
        if path == "/v1/work":
            return 200, {"role": self.config.role, "digest": burn_cpu(self.config.work_iterations)}
        burn_cpu(self.config.work_iterations)
        handler = getattr(self, f"_{self.config.role.replace('-', '_')}")
        status, reply = handler(method, path, body, raw)
        return status, reply

    def _need_db(self) -> store.Database:
        if self.db is None:
            raise RequestError(503, {"error": "no database configured (DB_HOST)"})
        return self.db

    def _call(self, service: str, method: str, path: str, payload: bytes | None) -> tuple[int, dict[str, Any]]:
        base = self.config.upstreams.get(service)
        if base is None:
            raise RequestError(502, {"error": f"{service}: no URL configured"})
        request = urllib.request.Request(
            f"{base}{path}", data=payload, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=UPSTREAM_TIMEOUT_SECONDS) as response:
                return int(response.status), json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read() or b"{}")
            except ValueError:
                detail = {"error": f"{service} answered {exc.code}"}
            return exc.code, detail
        except (urllib.error.URLError, TimeoutError, ConnectionError, ValueError) as exc:
            raise RequestError(503, {"error": f"{service} unavailable: {getattr(exc, 'reason', exc)}"}) from None

    def _api_gateway(self, method: str, path: str, body: dict[str, Any], raw: bytes) -> tuple[int, dict[str, Any]]:
        if path == "/v1/upstreams":
            states = {}
            for name in sorted(set(ROUTES.values()) & set(self.config.upstreams)):
                try:
                    states[name] = self._call(name, "GET", "/readyz", None)[0]
                except RequestError as reply:
                    states[name] = reply.status
            return 200, {"upstreams": states}
        base = upstream_for(path, self.config.upstreams)
        if base is None:
            raise RequestError(404, {"error": f"no route for {path}"})
        service = ROUTES[path.split("/")[2]]
        status, reply = self._call(service, method, path, raw if method in {"POST", "PUT"} else None)
        return status, {**reply, "via": "api-gateway"}

    def _user(self, method: str, path: str, body: dict[str, Any], raw: bytes) -> tuple[int, dict[str, Any]]:
        db = self._need_db()
        if method == "POST" and path == "/v1/users":
            name = body.get("name")
            if not isinstance(name, str) or not 0 < len(name) <= 200:
                raise RequestError(400, {"error": "name: 1-200 characters required"})
            row = db.one("INSERT INTO users (name) VALUES (%s) RETURNING id", (name,))
            return 201, {"id": row[0] if row else None, "name": name}
        match = re.fullmatch(r"/v1/users/(\d+)", path)
        if method == "GET" and match:
            row = db.one("SELECT id, name FROM users WHERE id = %s", (int(match.group(1)),))
            if row is None:
                raise RequestError(404, {"error": f"user {match.group(1)} not found"})
            return 200, {"id": row[0], "name": row[1]}
        raise RequestError(404, {"error": f"no route for {method} {path}"})

    def _account(self, method: str, path: str, body: dict[str, Any], raw: bytes) -> tuple[int, dict[str, Any]]:
        db = self._need_db()
        if method == "POST" and path == "/v1/accounts":
            owner = body.get("owner")
            if not isinstance(owner, str) or not 0 < len(owner) <= 200:
                raise RequestError(400, {"error": "owner: 1-200 characters required"})
            row = db.one("INSERT INTO accounts (owner) VALUES (%s) RETURNING id, balance", (owner,))
            assert row is not None
            return 201, {"id": row[0], "owner": owner, "balance": str(row[1])}
        match = re.fullmatch(r"/v1/accounts/(\d+)", path)
        if method == "GET" and match:
            account = int(match.group(1))
            cached = self._cache_get(f"balance:{account}")
            if cached is not None:
                return 200, {"id": account, "balance": cached, "cached": True}
            row = db.one("SELECT balance FROM accounts WHERE id = %s", (account,))
            if row is None:
                raise RequestError(404, {"error": f"account {account} not found"})
            self._cache_set(f"balance:{account}", str(row[0]))
            return 200, {"id": account, "balance": str(row[0]), "cached": False}
        raise RequestError(404, {"error": f"no route for {method} {path}"})

    def _transaction(self, method: str, path: str, body: dict[str, Any], raw: bytes) -> tuple[int, dict[str, Any]]:
        db = self._need_db()
        if method == "GET" and path == "/v1/transfers/count":
            row = db.one("SELECT count(*) FROM transfers", ())
            return 200, {"count": row[0] if row else 0}
        if method != "POST" or path != "/v1/transfers":
            raise RequestError(404, {"error": f"no route for {method} {path}"})
        source, target, amount = _id(body, "from"), _id(body, "to"), _amount(body)
        assert self.queue is not None
        with self.queue.track_inprogress():
            self._check_compliance(amount)
            try:
                transfer = db.transfer(source, target, amount)
            except store.RejectedError as exc:
                raise RequestError(409, {"error": str(exc)}) from None
            self._cache_delete(f"balance:{source}", f"balance:{target}")
        if "notification" in self.config.upstreams:
            note = json.dumps({"to": target, "text": f"received {amount}"}).encode()
            # The transfer is committed; a lost notification is not a failed transfer.
            with contextlib.suppress(RequestError):
                self._call("notification", "POST", "/v1/notifications", note)
        return 201, {"id": transfer, "from": source, "to": target, "amount": str(amount)}

    def _payment(self, method: str, path: str, body: dict[str, Any], raw: bytes) -> tuple[int, dict[str, Any]]:
        db = self._need_db()
        if method != "POST" or path != "/v1/payments":
            raise RequestError(404, {"error": f"no route for {method} {path}"})
        account, amount = _id(body, "account"), _amount(body)
        self._check_compliance(amount)
        try:
            payment = db.deposit(account, amount)
        except store.RejectedError as exc:
            raise RequestError(404, {"error": str(exc)}) from None
        self._cache_delete(f"balance:{account}")
        return 201, {"id": payment, "account": account, "amount": str(amount)}

    def _compliance(self, method: str, path: str, body: dict[str, Any], raw: bytes) -> tuple[int, dict[str, Any]]:
        db = self._need_db()
        if method != "POST" or path != "/v1/checks":
            raise RequestError(404, {"error": f"no route for {method} {path}"})
        amount = _amount(body)
        allowed = amount <= COMPLIANCE_LIMIT
        db.one("INSERT INTO compliance_checks (amount, allowed) VALUES (%s, %s) RETURNING id", (amount, allowed))
        return 200, {"allowed": allowed, "limit": str(COMPLIANCE_LIMIT)}

    def _notification(self, method: str, path: str, body: dict[str, Any], raw: bytes) -> tuple[int, dict[str, Any]]:
        if method != "POST" or path != "/v1/notifications":
            raise RequestError(404, {"error": f"no route for {method} {path}"})
        if self.cache is None:
            raise RequestError(503, {"error": "no queue configured (REDIS_ADDR)"})
        try:
            depth = self.cache.push("notifications", json.dumps(body))
        except Exception as exc:
            raise RequestError(503, {"error": f"queue unavailable: {exc}"}) from None
        return 202, {"queued": depth}

    def _check_compliance(self, amount: Decimal) -> None:
        if "compliance" not in self.config.upstreams:
            return
        status, verdict = self._call("compliance", "POST", "/v1/checks", json.dumps({"amount": str(amount)}).encode())
        if status != 200:
            raise RequestError(503, {"error": f"compliance answered {status}: {verdict.get('error', '')}"})
        if not verdict.get("allowed"):
            raise RequestError(403, {"error": f"compliance refused {amount} (limit {verdict.get('limit')})"})

    # The balance cache is optional: any Redis error is a cache miss.
    def _cache_get(self, key: str) -> str | None:
        try:
            return self.cache.get(key) if self.cache else None
        except Exception:
            return None

    def _cache_set(self, key: str, value: str) -> None:
        try:
            if self.cache:
                self.cache.set(key, value, CACHE_TTL_SECONDS)
        except Exception:
            return

    def _cache_delete(self, *keys: str) -> None:
        try:
            if self.cache:
                self.cache.delete(*keys)
        except Exception:
            return


def make_handler(wallet: Wallet) -> type[server.BaseHTTPRequestHandler]:
    class Handler(server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self, method: str) -> None:
            started = time.perf_counter()
            path = self.path.split("?", 1)[0]
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(min(length, 1 << 20)) if length else b""
            try:
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    raise RequestError(400, {"error": "the body is not JSON"}) from None
                if not isinstance(body, dict):
                    raise RequestError(400, {"error": "the body must be a JSON object"})
                status, reply = wallet.handle(method, path, body, raw)
            except RequestError as done:
                status, reply = done.status, done.body
            except Exception as exc:  # a bug or an outage: a 500 that says which, never a dropped connection
                status, reply = 500, {"error": f"{type(exc).__name__}: {exc}"}
            payload = json.dumps(reply, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            if path not in {"/healthz", "/readyz"}:
                route = route_of(path)
                wallet.requests.labels(method, route, str(status)).inc()
                wallet.latency.labels(method, route).observe(time.perf_counter() - started)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, format: str, *args: Any) -> None:
            return  # metrics, not access logs

    return Handler


def serve(config: settings.Settings, host: str = "0.0.0.0") -> tuple[server.ThreadingHTTPServer, Wallet]:
    """Start the metrics server and return the (not yet serving) API server."""
    registry = prometheus_client.CollectorRegistry()
    wallet = Wallet(config, registry)
    prometheus_client.start_http_server(config.metrics_port, addr=host, registry=registry)
    httpd = server.ThreadingHTTPServer((host, config.port), make_handler(wallet))
    httpd.daemon_threads = True
    return httpd, wallet
