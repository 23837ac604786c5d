"""The Pulumi program body: config -> model -> component. Bad config stops ``pulumi preview`` with one
line per problem, the same field paths as ``walletctl validate`` and the API server."""

from __future__ import annotations

import pathlib
from typing import Any

import pulumi
import yaml

from walletplatform import catalog
from walletplatform.models import errors
from walletplatform.render import network
from walletplatform.stacks import components, config

ROOT = catalog.DEFAULT_DIR.parent
CHART = ROOT / "charts" / "wallet-operator"


def load_policies(environment: str, root: pathlib.Path = ROOT) -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted((root / "policies" / environment).glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def run() -> None:
    cfg = pulumi.Config("wallet-platform")
    raw = {"mode": cfg.get("mode") or "direct", "platform": cfg.get_object("platform")}
    try:
        stack = config.parse_stack_config(raw, catalog.load_catalog())
    except errors.SpecError as exc:
        raise pulumi.RunError("invalid stack config:\n" + "\n".join(str(p) for p in exc.problems)) from None
    name = stack.resolved.name
    # awaitReadiness: false creates objects without waiting for rollouts (the provider's skipAwait), for
    # clusters where pods do not run, such as the tests' control plane without a kubelet (the operator
    # chart's admission webhook is off then: no pod could serve it).
    await_ready = cfg.get_bool("awaitReadiness") is not False
    if stack.mode == "direct":
        platform = components.WalletPlatform(name, stack.resolved, await_ready=await_ready)
        pulumi.export("services", platform.services)
        pulumi.export("postgres", platform.postgres)
        pulumi.export("redis_service", platform.redis_service)
        pulumi.export("hpas", platform.hpas)
    else:
        policies = load_policies(stack.resolved.spec.environment)
        installed = components.OperatorInstall(
            name,
            CHART,
            stack.document,
            policies,
            default_deny=network.render_namespace_default_deny(stack.resolved),
            await_ready=await_ready,
        )
        pulumi.export("release", installed.release)
