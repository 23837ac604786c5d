"""Postgres and Redis for the reference service: a small connection pool, the schema (created
idempotently at first use), the wallet's writes in one transaction each, and a Redis client that a
role may treat as optional (a balance cache) or required (the notification queue)."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from walletsvc import settings

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL, created_at TIMESTAMPTZ DEFAULT now());
CREATE TABLE IF NOT EXISTS accounts (
  id BIGSERIAL PRIMARY KEY, owner TEXT NOT NULL,
  balance NUMERIC(20, 2) NOT NULL DEFAULT 0 CHECK (balance >= 0), created_at TIMESTAMPTZ DEFAULT now());
CREATE TABLE IF NOT EXISTS transfers (
  id BIGSERIAL PRIMARY KEY, from_id BIGINT NOT NULL REFERENCES accounts, to_id BIGINT NOT NULL REFERENCES accounts,
  amount NUMERIC(20, 2) NOT NULL CHECK (amount > 0), created_at TIMESTAMPTZ DEFAULT now());
CREATE TABLE IF NOT EXISTS payments (
  id BIGSERIAL PRIMARY KEY, account_id BIGINT NOT NULL REFERENCES accounts,
  amount NUMERIC(20, 2) NOT NULL CHECK (amount > 0), created_at TIMESTAMPTZ DEFAULT now());
CREATE TABLE IF NOT EXISTS compliance_checks (
  id BIGSERIAL PRIMARY KEY, amount NUMERIC(20, 2) NOT NULL, allowed BOOLEAN NOT NULL,
  created_at TIMESTAMPTZ DEFAULT now());
"""
# Serialises schema creation across the replicas of all roles (CREATE TABLE IF NOT EXISTS races).
SCHEMA_LOCK = 7_270_001


class RejectedError(ValueError):
    """A request the wallet refuses (unknown account, insufficient funds): a 4xx, not an outage."""


class Database:
    """A bounded pool of connections to the read-write host; the schema is made on first use."""

    def __init__(self, config: settings.Postgres, size: int = 8, timeout_seconds: int = 2) -> None:
        import psycopg2.pool  # noqa: PLC0415 - only roles with a database need the driver

        self._pool = psycopg2.pool.ThreadedConnectionPool(
            0, size, host=config.host, port=config.port, dbname=config.database, user=config.user,
            password=config.password, connect_timeout=timeout_seconds, application_name="wallet-service",
        )  # fmt: skip
        self._schema_ready = False
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        """A cursor inside one transaction: committed on success, rolled back on any error; a broken
        connection is discarded, not returned to the pool."""
        conn = self._pool.getconn()
        broken = False
        try:
            with conn, conn.cursor() as cursor:
                yield cursor
        except Exception:
            broken = bool(conn.closed)
            raise
        finally:
            self._pool.putconn(conn, close=broken or bool(conn.closed))

    def ensure_schema(self) -> None:
        with self._lock:
            if self._schema_ready:
                return
            with self.transaction() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                cursor.execute(SCHEMA)
            self._schema_ready = True

    def ping(self) -> None:
        with self.transaction() as cursor:
            cursor.execute("SELECT 1")
        self.ensure_schema()

    def one(self, sql: str, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        self.ensure_schema()
        with self.transaction() as cursor:
            cursor.execute(sql, args)
            row: tuple[Any, ...] | None = cursor.fetchone()
            return row

    def transfer(self, source: int, target: int, amount: Decimal) -> int:
        """Write the transfer and both balances in one transaction; rows locked in id order, so two
        opposite transfers cannot deadlock."""
        if source == target:
            raise RejectedError("from and to are the same account")
        self.ensure_schema()
        with self.transaction() as cursor:
            cursor.execute(
                "SELECT id, balance FROM accounts WHERE id = ANY(%s) ORDER BY id FOR UPDATE", ([source, target],)
            )
            balances = dict(cursor.fetchall())
            if source not in balances or target not in balances:
                raise RejectedError(f"unknown account {source if source not in balances else target}")
            if balances[source] < amount:
                raise RejectedError(f"insufficient funds in account {source}")
            cursor.execute("UPDATE accounts SET balance = balance - %s WHERE id = %s", (amount, source))
            cursor.execute("UPDATE accounts SET balance = balance + %s WHERE id = %s", (amount, target))
            cursor.execute(
                "INSERT INTO transfers (from_id, to_id, amount) VALUES (%s, %s, %s) RETURNING id",
                (source, target, amount),
            )
            return int(cursor.fetchone()[0])

    def deposit(self, account: int, amount: Decimal) -> int:
        self.ensure_schema()
        with self.transaction() as cursor:
            cursor.execute("UPDATE accounts SET balance = balance + %s WHERE id = %s", (amount, account))
            if cursor.rowcount != 1:
                raise RejectedError(f"unknown account {account}")
            cursor.execute("INSERT INTO payments (account_id, amount) VALUES (%s, %s) RETURNING id", (account, amount))
            return int(cursor.fetchone()[0])


class Cache:
    """Redis with short timeouts: callers decide whether an error means degraded or not ready.

    In cluster mode the client holds the slot map it read when it was made. One made while the cluster
    was still forming (redis-operator assigns the slots leader by leader) would hold part of the map
    for good: redis-py re-reads the map on connection errors and MOVED replies, never for a slot it
    has no node for. So the client is made only once the map covers every slot, and is made again
    after any cluster error."""

    def __init__(self, address: tuple[str, int], password: str | None, *, cluster: bool = False) -> None:
        self._address, self._password, self._cluster = address, password, cluster
        self._connected: Any = None
        self._lock = threading.Lock()
        self._failing: str | None = None  # the last error reported, so a lasting one is reported once

    @property
    def _client(self) -> Any:
        """The client, made at first use: a cluster client reads the shard map when it is made, which
        fails while Redis is still starting, and a service must start (not ready) before its cache."""
        with self._lock:
            if self._connected is None:
                import redis  # noqa: PLC0415 - only roles with Redis need the client
                import redis.cluster  # noqa: PLC0415

                host, port = self._address
                options: dict[str, Any] = {
                    "password": self._password, "socket_timeout": 0.5, "socket_connect_timeout": 0.5,
                }  # fmt: skip
                if self._cluster:
                    # Discovers the shards from any node and sends each key to its slot's master.
                    self._connected = redis.cluster.RedisCluster(
                        host=host, port=port, require_full_coverage=True, **options
                    )
                else:
                    self._connected = redis.Redis(host=host, port=port, **options)
            return self._connected

    def _call(self, command: str, *args: Any, **options: Any) -> Any:
        try:
            reply = getattr(self._client, command)(*args, **options)
        except Exception as exc:
            self._failed(exc)
            raise
        if self._failing is not None:
            self._failing = None
            print("wallet-service: Redis answers again", file=sys.stderr, flush=True)
        return reply

    def _failed(self, exc: Exception) -> None:
        import redis.exceptions  # noqa: PLC0415

        if self._cluster and isinstance(exc, redis.exceptions.RedisClusterException):
            with self._lock:  # the next command makes a client that reads the whole map again
                stale, self._connected = self._connected, None
            if stale is not None:
                stale.close()
        message = f"{type(exc).__name__}: {exc}"
        if message != self._failing:
            self._failing = message
            print(f"wallet-service: Redis: {message}", file=sys.stderr, flush=True)

    def ping(self) -> None:
        self._call("ping")

    def get(self, key: str) -> str | None:
        value = self._call("get", key)
        return None if value is None else value.decode()

    def set(self, key: str, value: str, ttl_seconds: int) -> None:
        self._call("set", key, value, ex=ttl_seconds)

    def delete(self, *keys: str) -> None:
        self._call("delete", *keys)

    def push(self, queue: str, value: str) -> int:
        return int(self._call("lpush", queue, value))
