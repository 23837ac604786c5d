"""The service's settings, read once from the environment the operator's renderer gives every
service (render/workload.py): role, ports, Postgres, Redis, the URLs of the services it calls."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

ROLES = ("user", "account", "transaction", "payment", "notification", "compliance", "api-gateway")
# The services each role may call, as the catalog's ``calls`` (services/*.yaml) name them.
CALLABLE = ROLES


class SettingsError(ValueError):
    """A setting is missing or malformed: the message names the variable."""


@dataclasses.dataclass(frozen=True)
class Postgres:
    host: str
    read_host: str
    database: str
    user: str
    password: str
    port: int = 5432


@dataclasses.dataclass(frozen=True)
class Settings:
    role: str
    port: int
    metrics_port: int
    slo_p95_seconds: float
    work_iterations: int
    postgres: Postgres | None
    redis: tuple[str, int] | None
    redis_password: str | None
    redis_cluster: bool  # REDIS_MODE=cluster: a Redis Cluster (the client follows MOVED redirects)
    upstreams: dict[str, str]  # service name -> base URL


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}: {raw!r} is not an integer") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}: {value} is outside [{low}, {high}]")
    return value


def parse(env: Mapping[str, str]) -> Settings:
    """Settings from ``env``; SettingsError naming the variable on bad input."""
    role = env.get("SERVICE_NAME", "")
    if role not in ROLES:
        raise SettingsError(f"SERVICE_NAME: {role!r} is not one of {', '.join(ROLES)}")
    postgres = None
    if env.get("DB_HOST"):
        missing = [name for name in ("DB_NAME", "DB_USER", "DB_PASSWORD") if not env.get(name)]
        if missing:
            raise SettingsError(f"{missing[0]}: required when DB_HOST is set")
        postgres = Postgres(
            env["DB_HOST"],
            env.get("DB_READ_HOST") or env["DB_HOST"],
            env["DB_NAME"],
            env["DB_USER"],
            env["DB_PASSWORD"],
            _int(env, "DB_PORT", 5432, 1, 65535),
        )
    redis = None
    if env.get("REDIS_ADDR"):
        host, _, port = env["REDIS_ADDR"].rpartition(":")
        if not host or not port.isdigit():
            raise SettingsError(f"REDIS_ADDR: {env['REDIS_ADDR']!r} is not host:port")
        redis = (host, int(port))
    redis_mode = env.get("REDIS_MODE", "standalone")
    if redis_mode not in ("standalone", "cluster"):
        raise SettingsError(f"REDIS_MODE: {redis_mode!r} is not one of standalone, cluster")
    upstreams = {
        role_name: env[f"{role_name.upper().replace('-', '_')}_URL"].rstrip("/")
        for role_name in CALLABLE
        if env.get(f"{role_name.upper().replace('-', '_')}_URL")
    }
    return Settings(
        role=role,
        port=_int(env, "PORT", 8080, 1, 65535),
        metrics_port=_int(env, "METRICS_PORT", 9090, 1, 65535),
        slo_p95_seconds=_int(env, "SLO_P95_MS", 200, 1, 600_000) / 1000,
        work_iterations=_int(env, "WORK_ITERATIONS", 3000, 0, 10_000_000),
        postgres=postgres,
        redis=redis,
        redis_password=env.get("REDIS_PASSWORD") or None,
        redis_cluster=redis_mode == "cluster",
        upstreams=upstreams,
    )


def from_environment() -> Settings:
    return parse(os.environ)
