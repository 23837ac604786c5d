"""The operator process (``walletctl operator``): metrics and liveness servers, leader election, then
Kopf for as long as this process leads.

Liveness answers 200 while the process is a healthy standby, or while it leads and its event loop
beats; 503 when the loop is stuck, so the kubelet restarts it. Logs are JSON lines."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import logging
import os
import signal
import sys
import threading
import time
from typing import Any

import kopf
import prometheus_client

from walletplatform import catalog
from walletplatform.clients import kube
from walletplatform.controller import handlers, leader, webhook
from walletplatform.controller import settings as settings_mod

log = logging.getLogger("walletplatform.operator")
STUCK_SECONDS = 30.0


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%S')}.{int(record.msecs):03d}",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _serve_liveness(
    address: str, port: int, memo_ref: list[handlers.Memo], serving: threading.Event
) -> http.server.ThreadingHTTPServer:
    """/healthz (liveness) and /readyz (readiness: alive, and the admission webhook serving)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            stalled = memo_ref[0].stalled() if memo_ref else []
            stuck = bool(memo_ref) and time.monotonic() - memo_ref[0].heartbeat >= STUCK_SECONDS
            alive = not stuck and not stalled
            text = ("leader" if memo_ref else "standby") if alive else "event loop stuck"
            if stalled and not stuck:
                text = f"no progress in: {', '.join(stalled)}"
            if self.path == "/readyz" and alive and not serving.is_set():
                alive, text = False, "admission webhook not serving yet"
            self.send_response(200 if alive else 503)
            self.end_headers()
            self.wfile.write(text.encode())

        def log_message(self, *args: object) -> None:  # probes every few seconds: not worth a log line
            return

    server = http.server.ThreadingHTTPServer((address, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="liveness").start()
    return server


def _renew_loop(lease: leader.Lease, stop: threading.Event, term: threading.Event) -> None:
    """Renew until the process stops; when renewal fails past the renew deadline, end this leadership
    term. ``acquire_or_renew`` catches every error; the guard below keeps the thread alive regardless."""
    while not stop.wait(lease.renew_seconds) and not term.is_set():
        try:
            leading = lease.acquire_or_renew()
        except Exception:
            log.exception("lease renewal failed")
            leading = lease.is_leader
        if not leading:
            log.error("lost the leader lease; stopping work until it is won again")
            term.set()
            return


def run(settings: settings_mod.Settings, extra_loops: tuple[Any, ...] = ()) -> int:
    """Lead (run Kopf) whenever this process holds the lease; stand by otherwise; exit 0 on SIGTERM/SIGINT.

    A leader that loses the lease (e.g. the API server was unreachable for a whole lease duration) stops
    Kopf and its loops before anyone else can take over, then competes for the lease again."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    if settings.kubeconfig is not None:
        os.environ["KUBECONFIG"] = str(settings.kubeconfig)  # read by Kopf's login_with_kubeconfig
    client = kube.Kube(settings.kubeconfig)
    cat = catalog.load_catalog(settings.catalog_dir)
    prometheus_client.start_http_server(settings.metrics_port, addr=settings.listen_address)
    memo_ref: list[handlers.Memo] = []
    stop = threading.Event()
    # Every replica answers admission reviews, leader or not; without a webhook, readiness is liveness.
    serving = threading.Event()
    if settings.webhook_port:
        serving = webhook.Server(client, settings, cat).start(stop).ready
    else:
        serving.set()
    _serve_liveness(settings.listen_address, settings.liveness_port, memo_ref, serving)

    lease = leader.Lease(client, settings)
    while not stop.is_set():
        # (Again each term: Kopf's loop installs handlers of its own and leaves the defaults behind.)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        log.info("waiting for lease %s/%s as %s", settings.lease_namespace, settings.lease_name, settings.identity)
        if not lease.wait_until_leader(stop):
            break
        term = threading.Event()
        threading.Thread(target=_renew_loop, args=(lease, stop, term), daemon=True, name="lease").start()
        memo = handlers.Memo(client=client, catalog=cat, settings=settings)
        memo_ref[:] = [memo]
        kopf_settings = kopf.OperatorSettings()
        handlers.configure(kopf_settings)
        asyncio.run(_lead(settings, extra_loops, kopf_settings, memo, stop=stop, term=term))
        memo_ref.clear()
        if not term.is_set():  # Kopf stopped on a signal (it installs its own handlers while running)
            stop.set()
        term.set()
    lease.release()
    return 0


async def _lead(
    settings: settings_mod.Settings,
    extra_loops: tuple[Any, ...],
    kopf_settings: kopf.OperatorSettings,
    memo: handlers.Memo,
    *,
    stop: threading.Event,
    term: threading.Event,
) -> None:
    """Kopf until the process stops or the term ends. Kopf's stop flag is an asyncio future set from a
    watcher thread, never a threading.Event: Kopf waits on a threading.Event in an executor thread, and
    asyncio.run then waits for that thread forever after Kopf itself stopped on SIGTERM."""
    loop = asyncio.get_running_loop()
    flag: asyncio.Future[None] = loop.create_future()

    def release() -> None:
        if not flag.done():
            flag.set_result(None)

    def watch() -> None:
        while not stop.wait(0.2) and not term.is_set() and not flag.done():
            pass
        if not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(release)

    threading.Thread(target=watch, daemon=True, name="term").start()
    await kopf.operator(
        registry=handlers.build_registry(settings, extra_loops),
        settings=kopf_settings,
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        standalone=True,
        memo=memo,
        stop_flag=flag,
    )
    release()  # Kopf stopped by itself (a signal): let the watcher end
