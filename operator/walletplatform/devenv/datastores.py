"""A throwaway PostgreSQL and Redis from Debian's packages, on free loopback ports, for testing the
reference wallet service's data paths against the real servers (the platform's own data tier is
CloudNativePG's and redis-operator's). PostgreSQL runs as the ``postgres`` user: it refuses root."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import tempfile

from walletplatform.devenv import processes

PASSWORD = "wallet-test"  # a loopback-only server that lives for one test session


def _pg_bin(name: str) -> str:
    found = sorted(str(p) for p in pathlib.Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not found:
        raise FileNotFoundError(f"{name} not found: install Debian's postgresql package")
    return found[-1]


class Postgres:
    """Its data lives in a folder of its own under /tmp, owned by ``postgres`` (a pytest folder is
    root's, mode 0700); ``logs`` holds its log."""

    def __init__(self, logs: pathlib.Path) -> None:
        self.logs = logs
        self.workdir = pathlib.Path(tempfile.mkdtemp(prefix="wallet-pg-"))
        self.data = self.workdir / "pgdata"
        self.port = processes.free_port()
        self.process: processes.Process | None = None

    def _as_postgres(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["runuser", "-u", "postgres", "--", *argv], capture_output=True, text=True, check=True)

    def start(self) -> Postgres:
        self.logs.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.workdir, "postgres", "postgres")
        password_file = self.workdir / "pw"
        password_file.write_text(PASSWORD)
        shutil.chown(password_file, "postgres", "postgres")
        self._as_postgres(
            _pg_bin("initdb"), "-D", str(self.data), "-U", "wallet", "--auth=scram-sha-256", f"--pwfile={password_file}"
        )
        self.process = processes.Process(
            "postgres",
            ["runuser", "-u", "postgres", "--", _pg_bin("postgres"), "-D", str(self.data), "-p", str(self.port),
             "-k", str(self.workdir), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
            self.logs,
        ).start()  # fmt: skip
        self.process.wait_ready(self.ready, 60, "postgres")
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "wallet", "-d", "postgres", "-c",
             "CREATE DATABASE wallet"],
            env={**os.environ, "PGPASSWORD": PASSWORD}, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return self

    def ready(self) -> bool:
        return (
            subprocess.run(
                [_pg_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)], capture_output=True, check=False
            ).returncode
            == 0
        )

    def env(self) -> dict[str, str]:
        """The variables the renderer gives a service that depends on Postgres."""
        return {
            "DB_HOST": "127.0.0.1",
            "DB_PORT": str(self.port),
            "DB_NAME": "wallet",
            "DB_USER": "wallet",
            "DB_PASSWORD": PASSWORD,
        }

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


class Redis:
    """Debian's redis-server on loopback; with ``cluster`` a one-node Redis Cluster whose slots the
    caller assigns (``cli("CLUSTER", "ADDSLOTSRANGE", ...)``)."""

    def __init__(self, workdir: pathlib.Path, *, cluster: bool = False) -> None:
        self.workdir = workdir
        self.cluster = cluster
        self.port = processes.free_port()
        self.process: processes.Process | None = None

    def start(self) -> Redis:
        self.workdir.mkdir(parents=True, exist_ok=True)
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server not found: install Debian's redis-server package")
        self.process = processes.Process(
            "redis",
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)]
            + (["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"] if self.cluster else []),
            self.workdir,
        ).start()  # fmt: skip
        self.process.wait_ready(self.ready, 30, "redis")
        return self

    def cli(self, *args: str) -> str:
        """One redis-cli command; its reply as text (redis-cli prints errors on stdout too)."""
        result = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, check=False, timeout=30
        )
        return result.stdout.strip()

    def ready(self) -> bool:
        return self.cli("ping") == "PONG"

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
