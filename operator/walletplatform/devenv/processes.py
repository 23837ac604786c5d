"""Child processes that cannot outlive us: each gets PR_SET_PDEATHSIG, its own process group, a log
file, and a bounded stop (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import contextlib
import os
import pathlib
import secrets
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence

# Children die with the harness: util-linux's setpriv sets PR_SET_PDEATHSIG and then execs the command.
# Not a preexec_fn: Python code between fork and exec in a process with threads (the tests' gRPC
# threads from the Pulumi engine) deadlocked a child before exec once (its log held only gRPC's
# fork handler complaining, and its port never opened).
DIE_WITH_PARENT = ("setpriv", "--pdeathsig", "KILL", "--")


LISTEN_PORTS = (20000, 32768)  # below Linux's default ephemeral range, where clients' local ports come from
_handed_out: set[int] = set()


def _ephemeral_start() -> int:
    try:
        return int(pathlib.Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return LISTEN_PORTS[1]


def free_port() -> int:
    """A loopback TCP port that was free a moment ago, chosen below the ephemeral range: a port the
    kernel hands out with bind(0) can be taken by any outgoing connection's local end before our
    server binds it (seen as etcd's "bind: address already in use" while other clients were busy)."""
    high = min(LISTEN_PORTS[1], _ephemeral_start())
    for _ in range(100):
        port = secrets.randbelow(high - LISTEN_PORTS[0]) + LISTEN_PORTS[0] if high > LISTEN_PORTS[0] else 0
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            chosen: int = sock.getsockname()[1]
        _handed_out.add(chosen)  # never twice to this process's servers, which bind later
        return chosen
    raise OSError("no free loopback port below the ephemeral range after 100 tries")


class Process:
    """One managed child process with its log."""

    def __init__(self, name: str, argv: Sequence[str], log_dir: pathlib.Path, env: dict[str, str] | None = None):
        self.name = name
        self.argv = list(argv)
        self.log_path = log_dir / f"{name}.log"
        self.env = env
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            [*DIE_WITH_PARENT, *self.argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # setsid in the child, done by subprocess itself before exec
            env=self.env,
        )
        log.close()
        return self

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)

    def wait_ready(self, check: Callable[[], object], timeout: float, what: str) -> None:
        """``wait_until(check)``, but fail at once, with the log's tail, when the process has exited."""

        def probe() -> object:
            if not self.running:
                raise ProcessExitedError(
                    f"{self.name} exited with status {self.popen and self.popen.returncode}:\n{self.tail(20)}"
                )
            return check()

        wait_until(probe, timeout, what, fatal=ProcessExitedError)

    def tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class ProcessExitedError(RuntimeError):
    """A managed process ended while something waited for it to become ready."""


def http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    """Whether ``url`` answers 200 within 2 s (a component's health or readiness endpoint)."""
    with urllib.request.urlopen(url, timeout=2, context=context) as response:
        return int(response.status) == 200


def insecure_context() -> ssl.SSLContext:
    """For a loopback health endpoint behind a component's self-signed certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Component:
    """A node or control-plane component: one managed process, stopped with ``stop()``."""

    process: Process | None = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


def wait_until(
    check: Callable[[], object],
    timeout: float,
    what: str,
    interval: float = 0.25,
    fatal: type[Exception] | None = None,
) -> None:
    """Poll ``check()`` until it returns true; TimeoutError naming ``what`` after ``timeout`` seconds.
    An exception of type ``fatal`` ends the wait at once."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:
            if fatal is not None and isinstance(exc, fatal):
                raise
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s" + (f": {last}" if last else ""))
