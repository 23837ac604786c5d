"""The reference wallet service without its data tier: settings, routes, metrics, readiness and the
api-gateway's routing, over real HTTP on loopback (Postgres and Redis are in the node tests)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from walletplatform.devenv import processes
from walletsvc import app, settings


def test_settings_name_the_bad_variable() -> None:
    with pytest.raises(settings.SettingsError, match="SERVICE_NAME: 'wallet' is not one of"):
        settings.parse({"SERVICE_NAME": "wallet"})
    with pytest.raises(settings.SettingsError, match="PORT: 'http' is not an integer"):
        settings.parse({"SERVICE_NAME": "user", "PORT": "http"})
    with pytest.raises(settings.SettingsError, match="DB_PASSWORD: required when DB_HOST is set"):
        settings.parse({"SERVICE_NAME": "user", "DB_HOST": "pg", "DB_NAME": "w", "DB_USER": "u"})
    with pytest.raises(settings.SettingsError, match="REDIS_ADDR: 'redis' is not host:port"):
        settings.parse({"SERVICE_NAME": "user", "REDIS_ADDR": "redis"})


def test_settings_read_what_the_renderer_sets() -> None:
    config = settings.parse(
        {
            "SERVICE_NAME": "transaction",
            "PORT": "8080",
            "METRICS_PORT": "9090",
            "SLO_P95_MS": "200",
            "DB_HOST": "wallet-dev-postgres-rw",
            "DB_READ_HOST": "wallet-dev-postgres-ro",
            "DB_NAME": "wallet",
            "DB_USER": "wallet",
            "DB_PASSWORD": "secret",
            "REDIS_ADDR": "wallet-dev-redis-leader:6379",
            "ACCOUNT_URL": "http://wallet-dev-account:8080/",
        }
    )
    assert config.slo_p95_seconds == 0.2
    assert config.postgres is not None and config.postgres.read_host == "wallet-dev-postgres-ro"
    assert config.redis == ("wallet-dev-redis-leader", 6379)
    assert config.upstreams == {"account": "http://wallet-dev-account:8080"}


@pytest.mark.parametrize(("slo", "edge"), [(0.2, 0.2), (0.3, 0.3), (1.5, 1.5)], ids=["200ms", "300ms", "1500ms"])
def test_latency_buckets_include_the_slo(slo: float, edge: float) -> None:
    buckets = app.latency_buckets(slo)
    assert edge in buckets and list(buckets) == sorted(buckets) and len(buckets) >= 8


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/v1/accounts/42", "/v1/accounts/:id"),
        ("/v1/transfers?x=1", "/v1/transfers"),
        ("/v1/users/7/x", "/v1/users/:id/x"),
    ],
)
def test_metric_routes_collapse_ids(path: str, route: str) -> None:
    assert app.route_of(path) == route


def test_gateway_routes_by_resource() -> None:
    upstreams = {"user": "http://u:8080", "transaction": "http://t:8080"}
    assert app.upstream_for("/v1/users/1", upstreams) == "http://u:8080"
    assert app.upstream_for("/v1/transfers", upstreams) == "http://t:8080"
    assert app.upstream_for("/v1/payments", upstreams) is None  # no payment URL configured
    assert app.upstream_for("/admin", upstreams) is None


class Running:
    def __init__(self, env: dict[str, str]) -> None:
        port, metrics = processes.free_port(), processes.free_port()
        self.config = settings.parse({**env, "PORT": str(port), "METRICS_PORT": str(metrics), "WORK_ITERATIONS": "10"})
        self.httpd, self.wallet = app.serve(self.config, host="127.0.0.1")
        self.url = f"http://127.0.0.1:{port}"
        self.metrics_url = f"http://127.0.0.1:{metrics}/metrics"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def call(self, method: str, path: str, body: object = None) -> tuple[int, dict[str, object]]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())


@pytest.fixture
def notification() -> Iterator[Running]:
    # Redis configured at a port nothing listens on: the queue is required for this role.
    service = Running({"SERVICE_NAME": "notification", "REDIS_ADDR": f"127.0.0.1:{processes.free_port()}"})
    yield service
    service.httpd.shutdown()


def test_readiness_fails_on_a_required_dependency_and_says_which(notification: Running) -> None:
    status, body = notification.call("GET", "/readyz")
    assert status == 503 and body["ready"] is False
    assert str(body["checks"]["redis"]).startswith("unavailable:")  # type: ignore[index]
    assert notification.call("GET", "/healthz")[0] == 200
    status, body = notification.call("POST", "/v1/notifications", {"to": 1, "text": "x"})
    assert status == 503 and "queue unavailable" in str(body["error"])


def test_redis_as_a_cache_only_degrades() -> None:
    service = Running({"SERVICE_NAME": "api-gateway", "REDIS_ADDR": f"127.0.0.1:{processes.free_port()}"})
    try:
        status, body = service.call("GET", "/readyz")
        assert status == 200 and str(body["checks"]["redis"]).startswith("degraded:")  # type: ignore[index]
    finally:
        service.httpd.shutdown()


def test_gateway_forwards_and_counts_requests() -> None:
    user = Running({"SERVICE_NAME": "user"})  # no database: the user service answers 503 itself
    gateway = Running({"SERVICE_NAME": "api-gateway", "USER_URL": user.url})
    try:
        status, body = gateway.call("POST", "/v1/users", {"name": "ada"})
        assert status == 503 and body == {"error": "no database configured (DB_HOST)", "via": "api-gateway"}
        assert gateway.call("GET", "/v1/nowhere")[0] == 404
        assert gateway.call("POST", "/v1/users", [1, 2]) == (400, {"error": "the body must be a JSON object"})
        assert user.call("POST", "/v1/users", {"name": ""}) == (503, {"error": "no database configured (DB_HOST)"})
        with urllib.request.urlopen(gateway.metrics_url, timeout=5) as response:
            text = response.read().decode()
        assert 'http_requests_total{code="503",method="POST",route="/v1/users"} 1.0' in text
        assert 'http_requests_total{code="400",method="POST",route="/v1/users"} 1.0' in text
        assert 'http_request_duration_seconds_bucket{le="0.2",method="POST",route="/v1/users"}' in text
        status, body = gateway.call("GET", "/v1/upstreams")
        assert status == 200 and body["upstreams"] == {"user": 200}
    finally:
        user.httpd.shutdown()
        gateway.httpd.shutdown()


def test_cpu_work_is_measurable() -> None:
    assert app.burn_cpu(0) == ""
    assert len(app.burn_cpu(1000)) == 16
