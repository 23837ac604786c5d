"""``walletctl operator``: run the operator process (what the chart's Deployment runs).

Settings come from WALLET_* environment variables (see controller/settings.py); flags override the
few that people set by hand."""

from __future__ import annotations

import argparse
import dataclasses
import pathlib

from walletplatform.controller import settings as settings_mod


def cmd_operator(args: argparse.Namespace) -> int:
    # Kopf and the Kubernetes client take most of a second to import: only this command needs them.
    from walletplatform.controller import main as operator_main  # noqa: PLC0415
    from walletplatform.controller import scaler  # noqa: PLC0415

    try:
        settings = settings_mod.Settings.from_env()
    except ValueError as exc:
        raise SystemExit(f"walletctl operator: {exc}") from None
    changes = {
        key: value
        for key, value in (
            ("kubeconfig", args.kubeconfig),
            ("identity", args.identity),
            ("metrics_port", args.metrics_port),
            ("liveness_port", args.liveness_port),
            ("listen_address", args.listen_address),
            ("webhook_port", args.webhook_port),
            ("webhook_url", args.webhook_url),
        )
        if value is not None
    }
    if args.namespace:
        changes["namespaces"] = tuple(args.namespace)
    return operator_main.run(dataclasses.replace(settings, **changes), extra_loops=(scaler.scaling_loop,))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    text = "run the operator (leader election, reconcile, resync, scaling engine)"
    parser = sub.add_parser("operator", help=text, description=text)
    parser.add_argument("--kubeconfig", type=pathlib.Path, help="default: in-cluster service account")
    parser.add_argument("--identity", help="leader-election identity (default: host name)")
    parser.add_argument("--namespace", action="append", help="watch only these namespaces (repeatable)")
    parser.add_argument("--metrics-port", type=int)
    parser.add_argument("--liveness-port", type=int)
    parser.add_argument("--listen-address", help="where the metrics, liveness and webhook servers listen")
    parser.add_argument("--webhook-port", type=int, help="serve the admission webhook on this port (default: off)")
    parser.add_argument("--webhook-url", help="https://host:port the API server calls (default: the chart's Service)")
    parser.set_defaults(func=cmd_operator)
