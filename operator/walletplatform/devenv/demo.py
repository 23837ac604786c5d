"""The one-command demo: a real control plane, a real Prometheus backfilled with two weeks of wallet
traffic, the CRDs, the operator running under the chart's ServiceAccount, the example platform and
the dev ScalingPolicies. ``Demo.summary()`` reads everything back from the API server.

No kubelet, CloudNativePG or redis-operator runs here, so pods never start and the data tier never
reports Ready: the summary says so instead of pretending. "Reconciled" is the demo's finish line."""

from __future__ import annotations

import contextlib
import math
import pathlib
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import yaml

from walletplatform import API_GROUP, API_VERSION
from walletplatform.clients import kube
from walletplatform.devenv import controlplane, crds, processes, prometheus, toolchain
from walletplatform.devenv import operator as operator_env
from walletplatform.forecast import series
from walletplatform.models import scaling
from walletplatform.reconcile import compare
from walletplatform.scaling import report

API = f"{API_GROUP}/{API_VERSION}"
ZONE = ZoneInfo("Europe/Berlin")


def render_wallet_traffic(end: float, days: int = 15, seed: int = 7) -> series.Series:
    """Synthetic per-minute wallet requests/s: business-hours peaks (Berlin), quieter weekends and
    nights, a lunch bump and noise. Deterministic for a given seed."""
    start = end - days * series.DAY
    times = start + 60 * np.arange(days * 1440)
    rng = np.random.default_rng(seed)
    values = np.empty(times.size)
    for i, t in enumerate(times):
        local = datetime.fromtimestamp(float(t), ZONE)
        hour = local.hour + local.minute / 60
        day = 0.35 + 0.65 * max(0.0, math.sin(math.pi * (hour - 6) / 16)) if 6 <= hour <= 22 else 0.15
        lunch = 0.2 * math.exp(-(((hour - 12.5) / 0.6) ** 2))
        weekend = 0.6 if local.weekday() >= 5 else 1.0
        values[i] = 300 * (day + lunch) * weekend
    values *= rng.lognormal(0, 0.05, values.size)
    return series.Series(float(times[0]), 60.0, values)


class Demo:
    def __init__(self, workdir: pathlib.Path, example: pathlib.Path, policies: list[pathlib.Path]) -> None:
        self.workdir = workdir
        self.example = example
        self.policies = policies
        self.plane: controlplane.ControlPlane | None = None
        self.prometheus: prometheus.Prometheus | None = None
        self.operator: operator_env.Operator | None = None
        self.client: kube.Kube | None = None
        self.platform: dict[str, Any] = {}

    def start(self, say: Any) -> None:
        say("control plane: etcd, kube-apiserver, kube-controller-manager")
        self.plane = controlplane.ControlPlane(self.workdir / "controlplane", toolchain.ensure_binaries()).start()
        self.client = kube.Kube(self.plane.kubeconfig)
        say("prometheus: backfilling 15 days of wallet traffic (1-minute resolution)")
        now = time.time()
        traffic = render_wallet_traffic(now - 120)
        self.prometheus = prometheus.Prometheus(self.workdir / "prometheus")
        for service in ("transaction", "account"):
            labels = {"namespace": "wallet-dev", "service": f"wallet-dev-{service}"}
            self.prometheus.backfill(prometheus.openmetrics(traffic, labels))
        self.prometheus.start()
        say("CRDs: WalletPlatform, ScalingPolicy, CloudNativePG, redis-operator, prometheus-operator, VPA")
        crds.install(self.client)
        say("operator: chart RBAC, ServiceAccount token, leader election")
        operator_env.install_rbac(self.client)
        kubeconfig = operator_env.operator_kubeconfig(self.client, self.plane, self.workdir / "operator.kubeconfig")
        self.operator = operator_env.Operator(kubeconfig, self.workdir, "demo").start()
        processes.wait_until(lambda: self.operator is not None and self.operator.role() == "leader", 60, "operator")
        self._apply_examples(say)

    def _apply_examples(self, say: Any) -> None:
        assert self.client is not None and self.prometheus is not None
        doc = yaml.safe_load(self.example.read_text())
        doc["spec"].setdefault("monitoring", {})["prometheusUrl"] = self.prometheus.url
        namespace = doc["metadata"]["namespace"]
        self.client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}, "walletctl-demo")
        say(f"applying {self.example.name} (Prometheus URL set to the demo's {self.prometheus.url})")
        self.platform = self.client.apply(doc, "walletctl-demo")
        for path in self.policies:
            for policy in yaml.safe_load_all(path.read_text()):
                say(f"applying ScalingPolicy {policy['metadata']['name']} from {path}")
                self.client.apply(policy, "walletctl-demo")

    def reconciled(self) -> tuple[bool, str]:
        """(done, why not): Reconciled=True for the current generation and every policy decided."""
        assert self.client is not None
        meta = self.platform["metadata"]
        body = self.client.get(API, "WalletPlatform", meta["name"], meta["namespace"]) or {}
        conditions = {c["type"]: c for c in (body.get("status") or {}).get("conditions", [])}
        done = conditions.get("Reconciled", {})
        if done.get("status") != "True" or done.get("observedGeneration") != body["metadata"].get("generation"):
            return False, f"Reconciled: {done.get('reason', 'pending')} {done.get('message', '')}".strip()
        for policy in self.client.list(API, "ScalingPolicy", meta["namespace"]):
            if not (policy.get("status") or {}).get("services"):
                return False, f"ScalingPolicy {policy['metadata']['name']}: no decision yet"
        return True, ""

    def wait(self, timeout: float) -> str:
        """Empty string once reconciled; otherwise the reason it is not, after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        why = ""
        while time.monotonic() < deadline:
            done, why = self.reconciled()
            if done:
                return ""
            if self.operator is not None and not self.operator.process.running:
                return "the operator process exited:\n" + self.operator.process.tail(20)
            time.sleep(1)
        return why or "timed out"

    def summary(self) -> str:
        assert self.client is not None and self.plane is not None
        meta = self.platform["metadata"]
        ns = meta["namespace"]
        body = self.client.get(API, "WalletPlatform", meta["name"], ns) or {}
        status = body.get("status") or {}
        lines = [f"WalletPlatform {ns}/{meta['name']}"]
        for c in status.get("conditions", []):
            lines.append(f"  {c['type']:<11} {c['status']:<6} {c['reason']}: {c['message']}")
        lines.append("  components:")
        for name, comp in (status.get("components") or {}).items():
            lines.append(f"    {name:<13} {'ready' if comp['ready'] else 'not ready':<10} {comp.get('message', '')}")
        lines.append("  HPAs (min/max, minReplicas owner):")
        for hpa in self.client.list("autoscaling/v2", "HorizontalPodAutoscaler", ns):
            owners = sorted(compare.field_managers(hpa, "spec", "minReplicas")) or ["-"]
            spec = hpa["spec"]
            lines.append(
                f"    {hpa['metadata']['name']:<28} {spec.get('minReplicas')}/{spec['maxReplicas']}  {','.join(owners)}"
            )
        for policy in self.client.list(API, "ScalingPolicy", ns):
            parsed = scaling.ScalingPolicyStatus.model_validate(policy.get("status") or {})
            lines.append(f"  ScalingPolicy {policy['metadata']['name']}:")
            lines += ["    " + line for line in report.render_table(parsed).splitlines()]
        lines += [
            "",
            "No kubelet, CloudNativePG or redis-operator runs on this machine: pods stay Pending and the data",
            "tier reports no status, so Ready stays False and says why. Everything above is read from the API.",
            f"kubectl: export KUBECONFIG={self.plane.kubeconfig}",
            f"prometheus: {self.prometheus.url if self.prometheus else '-'}",
            f"logs: {self.workdir}",
        ]
        return "\n".join(lines)

    def stop(self) -> None:
        for part in (self.operator, self.prometheus, self.plane):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.stop()


@contextlib.contextmanager
def running(workdir: pathlib.Path, example: pathlib.Path, policies: list[pathlib.Path], say: Any) -> Iterator[Demo]:
    demo = Demo(workdir, example, policies)
    try:
        demo.start(say)
        yield demo
    finally:
        demo.stop()
