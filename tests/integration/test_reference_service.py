"""The reference wallet service against a real PostgreSQL and Redis (Debian's, on loopback): the wallet's
writes are transactional, concurrent transfers never create or lose money, an overdraft is refused,
balances are cached in Redis and invalidated by transfers, readiness follows Postgres."""

from __future__ import annotations

import concurrent.futures
import pathlib
from collections.abc import Iterator
from decimal import Decimal

import pytest
from redis.crc import key_slot
from walletplatform.devenv import datastores, processes
from walletsvc import store

from tests.unit.test_reference_service import Running

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[datastores.Postgres, datastores.Redis]]:
    pg = datastores.Postgres(tmp_path_factory.mktemp("pg")).start()
    redis = datastores.Redis(tmp_path_factory.mktemp("redis")).start()
    yield pg, redis
    redis.stop()
    pg.stop()


@pytest.fixture(scope="module")
def wallet(stores: tuple[datastores.Postgres, datastores.Redis]) -> Iterator[dict[str, Running]]:
    pg, redis = stores
    data = {**pg.env(), "REDIS_ADDR": f"127.0.0.1:{redis.port}"}
    services = {
        "compliance": Running({"SERVICE_NAME": "compliance", **pg.env()}),
        "notification": Running({"SERVICE_NAME": "notification", "REDIS_ADDR": data["REDIS_ADDR"]}),
        "account": Running({"SERVICE_NAME": "account", **data}),
    }
    services["transaction"] = Running(
        {
            "SERVICE_NAME": "transaction",
            **data,
            "COMPLIANCE_URL": services["compliance"].url,
            "NOTIFICATION_URL": services["notification"].url,
        }
    )
    services["payment"] = Running({"SERVICE_NAME": "payment", **data, "COMPLIANCE_URL": services["compliance"].url})
    services["api-gateway"] = Running(
        {
            "SERVICE_NAME": "api-gateway",
            "ACCOUNT_URL": services["account"].url,
            "TRANSACTION_URL": services["transaction"].url,
            "PAYMENT_URL": services["payment"].url,
        }
    )
    yield services
    for service in services.values():
        service.httpd.shutdown()


def balance(wallet: dict[str, Running], account: int) -> tuple[Decimal, bool]:
    status, body = wallet["api-gateway"].call("GET", f"/v1/accounts/{account}")
    assert status == 200, body
    return Decimal(str(body["balance"])), bool(body["cached"])


def test_every_role_is_ready_when_its_dependencies_answer(wallet: dict[str, Running]) -> None:
    for name, service in wallet.items():
        status, body = service.call("GET", "/readyz")
        assert status == 200 and body["ready"] is True, (name, body)


def test_transfers_through_the_gateway_are_atomic_and_cached_balances_follow(wallet: dict[str, Running]) -> None:
    gateway = wallet["api-gateway"]
    ids = [gateway.call("POST", "/v1/accounts", {"owner": owner})[1]["id"] for owner in ("ada", "bob")]
    assert gateway.call("POST", "/v1/payments", {"account": ids[0], "amount": "100.00"})[0] == 201
    assert balance(wallet, ids[0]) == (Decimal("100.00"), False)
    assert balance(wallet, ids[0]) == (Decimal("100.00"), True)  # from Redis now
    status, body = gateway.call("POST", "/v1/transfers", {"from": ids[0], "to": ids[1], "amount": "30.50"})
    assert status == 201 and body["via"] == "api-gateway", body
    assert balance(wallet, ids[0]) == (Decimal("69.50"), False)  # the transfer invalidated the cache
    assert balance(wallet, ids[1])[0] == Decimal("30.50")
    status, body = gateway.call("POST", "/v1/transfers", {"from": ids[1], "to": ids[0], "amount": "31.00"})
    assert status == 409 and "insufficient funds" in body["error"]
    status, body = gateway.call("POST", "/v1/transfers", {"from": ids[0], "to": ids[1], "amount": "20000"})
    assert status == 403 and "compliance refused" in body["error"]
    assert (balance(wallet, ids[0])[0], balance(wallet, ids[1])[0]) == (Decimal("69.50"), Decimal("30.50"))


def test_concurrent_transfers_neither_create_nor_lose_money(wallet: dict[str, Running]) -> None:
    gateway = wallet["api-gateway"]
    ids = [gateway.call("POST", "/v1/accounts", {"owner": f"c{i}"})[1]["id"] for i in range(4)]
    for account in ids:
        gateway.call("POST", "/v1/payments", {"account": account, "amount": "50.00"})
    before = wallet["transaction"].call("GET", "/v1/transfers/count")[1]["count"]

    def transfer(i: int) -> int:
        source, target = ids[i % 4], ids[(i * 3 + 1) % 4]
        if source == target:
            target = ids[(i + 2) % 4]
        return gateway.call("POST", "/v1/transfers", {"from": source, "to": target, "amount": "7.25"})[0]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(transfer, range(80)))
    assert set(statuses) <= {201, 409}, statuses
    committed = statuses.count(201)
    assert committed > 0
    total = sum(balance(wallet, account)[0] for account in ids)
    assert total == Decimal("200.00")  # money moved, never made or lost
    after = wallet["transaction"].call("GET", "/v1/transfers/count")[1]["count"]
    assert after - before == committed  # every 201 is a committed row, no 409 left one behind


def test_readiness_follows_postgres(tmp_path: pathlib.Path) -> None:
    pg = datastores.Postgres(tmp_path / "pg").start()
    service = Running({"SERVICE_NAME": "user", **pg.env()})
    try:
        assert service.call("GET", "/readyz")[0] == 200
        pg.stop()
        status, body = service.call("GET", "/readyz")
        assert status == 503 and str(body["checks"]["postgres"]).startswith("unavailable")  # type: ignore[index]
    finally:
        service.httpd.shutdown()
        pg.stop()


def test_a_cluster_cache_made_while_slots_are_assigned_serves_every_key_once_they_are(
    tmp_path: pathlib.Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """redis-operator assigns the slots leader by leader: a service that reaches Redis in between must
    not keep a partial slot map (redis-py never re-reads it for a slot it has no node for, and every
    balance in those slots would stay a cache miss; CI saw it once on the node)."""
    redis = datastores.Redis(tmp_path / "redis", cluster=True).start()
    try:
        assert redis.cli("CLUSTER", "ADDSLOTSRANGE", "0", "8191") == "OK"
        processes.wait_until(lambda: "cluster_slots_assigned:8192" in redis.cli("CLUSTER", "INFO"), 10, "half")
        cache = store.Cache(("127.0.0.1", redis.port), None, cluster=True)
        key = next(k for k in (f"balance:{n}" for n in range(100)) if key_slot(k.encode()) >= 8192)
        with pytest.raises(Exception, match="not covered"):
            cache.set(key, "30.00", 30)
        assert "wallet-service: Redis: RedisClusterException" in capfd.readouterr().err  # said once, not hidden
        assert redis.cli("CLUSTER", "ADDSLOTSRANGE", "8192", "16383") == "OK"
        processes.wait_until(lambda: "cluster_state:ok" in redis.cli("CLUSTER", "INFO"), 10, "cluster_state:ok")
        cache.set(key, "30.00", 30)
        assert cache.get(key) == "30.00"
        assert "Redis answers again" in capfd.readouterr().err
    finally:
        redis.stop()
