"""The operator process (``walletctl operator``): metrics and liveness servers, leader election, then
Kopf for as long as this process leads.

Liveness answers 200 while the process is a healthy standby, or while it leads and its event loop
beats; 503 when the loop is stuck, so the kubelet restarts it. Logs are JSON lines."""

from __future__ import annotations

import asyncio
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
from walletplatform.controller import handlers, leader
from walletplatform.controller import settings as settings_mod

log = logging.getLogger("walletplatform.operator")
STUCK_SECONDS = 30.0


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _serve_liveness(port: int, memo_ref: list[handlers.Memo]) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            alive = not memo_ref or time.monotonic() - memo_ref[0].heartbeat < STUCK_SECONDS
            text = ("leader" if memo_ref else "standby") if alive else "event loop stuck"
            self.send_response(200 if alive else 503)
            self.end_headers()
            self.wfile.write(text.encode())

        def log_message(self, *args: object) -> None:  # probes every few seconds: not worth a log line
            return

    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="liveness").start()
    return server


def _renew_loop(lease: leader.Lease, stop: threading.Event, term: threading.Event) -> None:
    """Renew until the process stops; when renewal fails for a whole lease, end this leadership term."""
    while not stop.wait(lease.retry_seconds) and not term.is_set():
        if not lease.acquire_or_renew():
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
    prometheus_client.start_http_server(settings.metrics_port)
    memo_ref: list[handlers.Memo] = []
    _serve_liveness(settings.liveness_port, memo_ref)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    lease = leader.Lease(client, settings)
    while not stop.is_set():
        log.info("waiting for lease %s/%s as %s", settings.lease_namespace, settings.lease_name, settings.identity)
        if not lease.wait_until_leader(stop):
            break
        term = threading.Event()
        threading.Thread(target=_renew_loop, args=(lease, stop, term), daemon=True, name="lease").start()
        memo = handlers.Memo(client=client, catalog=cat, settings=settings)
        memo_ref[:] = [memo]
        kopf_settings = kopf.OperatorSettings()
        handlers.configure(kopf_settings)
        either = threading.Event()
        threading.Thread(target=_end_of_term, args=(stop, term, either), daemon=True, name="term").start()
        asyncio.run(
            kopf.operator(
                registry=handlers.build_registry(settings, extra_loops),
                settings=kopf_settings,
                clusterwide=not settings.namespaces,
                namespaces=settings.namespaces,
                standalone=True,
                memo=memo,
                stop_flag=either,
            )
        )
        memo_ref.clear()
        if not term.is_set():  # Kopf stopped on a signal (it installs its own handlers while running)
            stop.set()
        term.set()
    lease.release()
    return 0


def _end_of_term(stop: threading.Event, term: threading.Event, either: threading.Event) -> None:
    """Set ``either`` (Kopf's stop flag) once the process stops or the leadership term ends."""
    while not stop.wait(0.5) and not term.is_set():
        pass
    either.set()
