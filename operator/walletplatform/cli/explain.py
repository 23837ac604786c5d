"""``walletctl explain -n NS POLICY``: the scaling engine's last decision per service, as a table,
read from the ScalingPolicy's status (what the engine wrote; no recomputation)."""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

import urllib3

from walletplatform import API_GROUP, API_VERSION
from walletplatform.clients import kube, kubeconfig
from walletplatform.models import errors, scaling
from walletplatform.scaling import report

EXIT_NOT_FOUND = 1  # also: the API server cannot be reached


def cmd_explain(args: argparse.Namespace) -> int:
    try:
        client = kube.Kube(args.kubeconfig or default_kubeconfig())  # reads the server's discovery too
        body = client.get(f"{API_GROUP}/{API_VERSION}", "ScalingPolicy", args.policy, args.namespace)
    except kubeconfig.ConfigError as exc:
        raise errors.SpecError([errors.Problem(path="--kubeconfig", message=str(exc))]) from None
    except (kube.ApiError, urllib3.exceptions.HTTPError, OSError) as exc:
        print(f"cannot read ScalingPolicy {args.namespace}/{args.policy}: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
    if body is None:
        print(f"ScalingPolicy {args.namespace}/{args.policy} not found", file=sys.stderr)
        return EXIT_NOT_FOUND
    status = scaling.ScalingPolicyStatus.model_validate(body.get("status") or {})
    print(f"ScalingPolicy {args.namespace}/{args.policy} -> WalletPlatform {body['spec']['platformRef']}")
    print(report.render_table(status), end="")
    return 0


def default_kubeconfig() -> pathlib.Path:
    return pathlib.Path(os.environ.get("KUBECONFIG", str(pathlib.Path.home() / ".kube" / "config")))


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """-n/--namespace and --kubeconfig, for the commands that read one object from a cluster."""
    parser.add_argument("-n", "--namespace", default="default")
    parser.add_argument("--kubeconfig", type=pathlib.Path, help="default: $KUBECONFIG or ~/.kube/config")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    text = "explain the last scaling decision of a ScalingPolicy, per service"
    parser = sub.add_parser("explain", help=text, description=text)
    parser.add_argument("policy", help="ScalingPolicy name")
    add_cluster_arguments(parser)
    parser.set_defaults(func=cmd_explain)
