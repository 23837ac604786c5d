"""``walletctl demo``: the whole system on this machine (see devenv/demo.py). ``--exit-when-ready``
prints the summary and exits 0 once the platform is reconciled, or 1 with the reason, tearing
everything down; without it the demo runs until Ctrl-C."""

from __future__ import annotations

import argparse
import pathlib
import signal
import sys
import tempfile
import threading
import time

from walletplatform import catalog

ROOT = catalog.DEFAULT_DIR.parent


def cmd_demo(args: argparse.Namespace) -> int:
    from walletplatform.devenv import demo  # noqa: PLC0415 - the local cluster's code, for this command only

    started = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {text}", flush=True)

    workdir = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="wallet-demo-"))
    policies = sorted((ROOT / "policies" / "dev").glob("*.yaml"))
    with demo.running(workdir, pathlib.Path(args.file), policies, say) as running:
        say("waiting for the operator to reconcile the platform and decide the scaling floors")
        why = running.wait(args.timeout)
        print(running.summary(), flush=True)
        if why:
            print(f"not reconciled after {args.timeout:.0f}s: {why}", file=sys.stderr)
            return 1
        say("reconciled")
        # Every alert and dashboard query against the live series: one that selects nothing is a bug.
        live, report = running.check_monitoring(say)
        print(report, flush=True)
        if not live:
            print("some alert or dashboard queries select no live series (listed above)", file=sys.stderr)
            return 1
        if args.exit_when_ready:
            return 0
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        print("running until Ctrl-C", flush=True)
        stop.wait()
        say("stopping")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    text = "run the whole system locally: a node, Prometheus, the operator in-cluster, the example platform (root)"
    parser = sub.add_parser("demo", help=text, description=text)
    parser.add_argument("-f", "--file", default=str(ROOT / "examples" / "walletplatform.yaml"))
    parser.add_argument("--exit-when-ready", action="store_true", help="print the summary and exit (CI)")
    parser.add_argument(
        "--timeout", type=float, default=480.0, help="seconds to wait for the platform (data tier included) to be Ready"
    )
    parser.add_argument("--workdir", help="keep state and logs here (default: a new temporary folder)")
    parser.set_defaults(func=cmd_demo)
