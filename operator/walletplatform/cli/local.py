"""``walletctl cluster``: a local cluster (control plane and one node, devenv.cluster) until Ctrl-C;
``walletctl images``: build the local images from the project's Dockerfiles (devenv.images)."""

from __future__ import annotations

import argparse
import pathlib
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable


def _say(started: float) -> Callable[[str], None]:
    def say(text: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {text}", flush=True)

    return say


def cmd_cluster(args: argparse.Namespace) -> int:
    from walletplatform.devenv import cluster, hostnet  # noqa: PLC0415 - for these commands only

    say = _say(time.monotonic())
    workdir = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="wallet-cluster-"))
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with cluster.running(workdir, say) as local:
            assert local.plane is not None
            print(f"export KUBECONFIG={local.plane.kubeconfig}", flush=True)
            print("running until Ctrl-C", flush=True)
            stop.wait()
            say("stopping")
    except hostnet.NodeBusyError as exc:
        print(f"walletctl cluster: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_images(args: argparse.Namespace) -> int:
    from walletplatform.devenv import images  # noqa: PLC0415 - for this command only

    for reference, archive in images.ensure_all(_say(time.monotonic())).items():
        print(f"{reference}\t{archive}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    text = "run a local cluster (control plane + one node) on this machine until Ctrl-C (needs root)"
    parser = sub.add_parser("cluster", help=text, description=text)
    parser.add_argument("--workdir", help="keep state and logs here (default: a new temporary folder)")
    parser.set_defaults(func=cmd_cluster)
    text = "build the local images (operator, reference service, pause) from their Dockerfiles, cached by content"
    parser = sub.add_parser("images", help=text, description=text)
    parser.set_defaults(func=cmd_images)
