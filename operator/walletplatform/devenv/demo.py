"""The one-command demo: a local cluster (control plane and one real node, devenv.cluster), a real
Prometheus backfilled with two weeks of wallet traffic, the operator installed in-cluster by its Helm
chart from its locally built image (two replicas, one leader), the example platform in a namespace
that enforces the ``restricted`` Pod Security Standard, and the dev ScalingPolicies. The services run
the reference wallet service. ``Demo.summary()`` reads everything back from the API server and asks
one pod of each service why it is not ready.

CloudNativePG and redis-operator do not run here yet, so the data tier reports no status: the
services that need Postgres wait for the Secret CloudNativePG creates, and the summary says so."""

from __future__ import annotations

import contextlib
import json
import math
import pathlib
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import yaml

from walletplatform import API_GROUP, API_VERSION
from walletplatform.clients import kube
from walletplatform.devenv import chart, cluster, hostnet, kube_state_metrics, monitoring, processes, prometheus
from walletplatform.forecast import series
from walletplatform.models import common, scaling
from walletplatform.reconcile import compare
from walletplatform.scaling import report

API = f"{API_GROUP}/{API_VERSION}"
ZONE = ZoneInfo("Europe/Berlin")


# Each service's share of the wallet's requests in the backfilled history (the gateway sees them all).
SHARES = {
    "api-gateway": 1.0,
    "transaction": 1.0,
    "account": 1.0,
    "user": 0.3,
    "payment": 0.4,
    "notification": 0.6,
    "compliance": 0.6,
}


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


def unscheduled(pods: list[dict[str, Any]]) -> list[str]:
    """A line per pod the scheduler could not place, with its reason: a Postgres join Job on a full
    node shows in the Cluster's status only as "Creating a new replica"."""
    lines = []
    for pod in pods:
        status = pod.get("status") or {}
        conditions: list[dict[str, Any]] = status.get("conditions") or []
        scheduled = next((c for c in conditions if c.get("type") == "PodScheduled"), {})
        if status.get("phase") == "Pending" and scheduled.get("status") == "False":
            lines.append(f"pod {pod['metadata']['name']} not scheduled: {scheduled.get('message', '-')}")
    return lines


class Demo:
    def __init__(self, workdir: pathlib.Path, example: pathlib.Path, policies: list[pathlib.Path]) -> None:
        self.workdir = workdir
        self.example = example
        self.policies = policies
        self.cluster: cluster.LocalCluster | None = None
        self.prometheus: prometheus.Prometheus | None = None
        self.kube_state_metrics: kube_state_metrics.KubeStateMetrics | None = None
        self.client: kube.Kube | None = None
        self.platform: dict[str, Any] = {}

    def start(self, say: Any) -> None:
        self.cluster = cluster.LocalCluster(self.workdir / "cluster")
        self.cluster.start(say, data_operators=True)
        assert self.cluster.plane is not None and self.cluster.client is not None
        self.client = self.cluster.client
        say("prometheus: backfilling 15 days of wallet traffic (1-minute resolution)")
        now = time.time()
        traffic = render_wallet_traffic(now - 120)
        self.prometheus = prometheus.Prometheus(self.workdir / "prometheus", address=hostnet.NODE_IP)
        # Every service's history (the dev policies forecast all seven), from one shape scaled.
        self.prometheus.backfill(
            prometheus.openmetrics_many(
                [
                    (
                        series.Series(traffic.start, traffic.step, traffic.values * share),
                        {"namespace": "wallet-dev", "service": f"wallet-dev-{service}"},
                    )
                    for service, share in SHARES.items()
                ]
            )
        )
        self.prometheus.start()
        self.kube_state_metrics = kube_state_metrics.KubeStateMetrics(
            self.cluster.binaries.kube_state_metrics, self.cluster.node.logs, self.cluster.plane.kubeconfig
        ).start()
        say(f"operator: helm install {chart.CHART.name} (two replicas of the local operator image)")
        # The platform's status follows its pods' readiness through the watches on its children; the
        # resync (the safety net under them, 60 s by default) is 10 s here, as a demo shows it working.
        chart.install(self.cluster.binaries.helm, self.cluster.plane.kubeconfig, {"resyncSeconds": 10})
        processes.wait_until(lambda: self.leader() is not None, 90, "an operator replica leading")
        say(f"operator: {self.leader()} leads")
        self._apply_examples(say)

    def leader(self) -> str | None:
        """The operator pod holding the leader Lease, or None."""
        assert self.client is not None
        for lease in self.client.list("coordination.k8s.io/v1", "Lease", chart.NAMESPACE):
            holder = (lease.get("spec") or {}).get("holderIdentity")
            if holder and holder.startswith(chart.RELEASE):
                return str(holder)
        return None

    def _apply_examples(self, say: Any) -> None:
        assert self.client is not None and self.prometheus is not None
        doc = yaml.safe_load(self.example.read_text())
        doc["spec"].setdefault("monitoring", {})["prometheusUrl"] = self.prometheus.url
        namespace = doc["metadata"]["namespace"]
        restricted: dict[str, common.JsonValue] = {"pod-security.kubernetes.io/enforce": "restricted"}
        self.client.apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": restricted}},
            "walletctl-demo",
        )
        say(f"applying {self.example.name} (Prometheus URL set to the demo's {self.prometheus.url})")
        self.platform = self.client.apply(doc, "walletctl-demo")
        for path in self.policies:
            for policy in yaml.safe_load_all(path.read_text()):
                say(f"applying ScalingPolicy {policy['metadata']['name']} from {path}")
                self.client.apply(policy, "walletctl-demo")

    def reconciled(self) -> tuple[bool, str]:
        """(done, why not): Reconciled=True for the current generation, every policy decided, the
        platform Ready=True (every service and the data tier, from what their controllers report),
        every pod settled."""
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
        ready = conditions.get("Ready", {})
        if ready.get("status") != "True":
            return False, f"Ready: {ready.get('reason', 'pending')} {ready.get('message', '')}".strip()
        for name, (running, total, ready, why) in self.service_pods().items():
            # The data tier is Ready (above), so every service's every pod becomes Ready: wait for it.
            # (The platform reports Ready from the watches as soon as the data tier is; pods a
            # schedule's floor has just added are still starting then.)
            if total == 0 or ready < total:
                return False, f"Deployment {name}: {running}/{total} pods Running, {ready} Ready {why}".rstrip()
        return True, ""

    def service_pods(self) -> dict[str, tuple[int, int, int, str]]:
        """Per service Deployment: (pods Running, pods, pods Ready, why one pod is not ready)."""
        assert self.client is not None
        ns = self.platform["metadata"]["namespace"]
        selector = f"app.kubernetes.io/instance={self.platform['metadata']['name']}"
        pods = self.client.list("v1", "Pod", ns, selector=selector)
        found: dict[str, tuple[int, int, int, str]] = {}
        for deployment in self.client.list("apps/v1", "Deployment", ns, selector=selector):
            name = deployment["metadata"]["name"]
            component = deployment["spec"]["selector"]["matchLabels"]
            mine = [p for p in pods if all(p["metadata"].get("labels", {}).get(k) == v for k, v in component.items())]
            running = sum(1 for p in mine if (p.get("status") or {}).get("phase") == "Running")
            ready = [p for p in mine if _ready(p)]
            unready = next((p for p in mine if not _ready(p)), None)
            why = _why_not_ready(unready) if unready is not None else ""
            found[name] = (running, len(mine), len(ready), why)
        return found

    def wait(self, timeout: float) -> str:
        """Empty string once reconciled; otherwise the reason it is not, after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        why = ""
        while time.monotonic() < deadline:
            done, why = self.reconciled()
            if done:
                return ""
            time.sleep(1)
        return why or "timed out"

    def summary(self) -> str:
        assert self.client is not None and self.cluster is not None and self.cluster.plane is not None
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
        lines.append("  pods (Running/all, Ready, and what a not-ready pod's /readyz says):")
        for name, (running, total, ready, why) in sorted(self.service_pods().items()):
            lines.append(f"    {name:<28} {running}/{total} Running  {ready}/{total} Ready  {why}".rstrip())
        lines.append("  data tier (as CloudNativePG and redis-operator report it):")
        lines += ["    " + line for line in self.data_tier()]
        lines += [
            f"  operator: {self.leader() or 'no leader'} leads ({chart.RELEASE} chart, namespace {chart.NAMESPACE})",
            "",
            "Everything above is read from the cluster.",
            f"kubectl: export KUBECONFIG={self.cluster.plane.kubeconfig}",
            f"prometheus: {self.prometheus.url if self.prometheus else '-'}",
            f"logs: {self.workdir}",
        ]
        return "\n".join(lines)

    def data_tier(self) -> list[str]:
        """One line per data-tier object: Postgres primary and replicas, the pooler, Redis leaders."""
        assert self.client is not None
        ns, name = self.platform["metadata"]["namespace"], self.platform["metadata"]["name"]
        pg = (self.client.get("postgresql.cnpg.io/v1", "Cluster", f"{name}-pg", ns) or {}).get("status") or {}
        pooler = self.client.get("apps/v1", "Deployment", f"{name}-pg-pooler-rw", ns) or {}
        redis_live = self.client.get("redis.redis.opstreelabs.in/v1beta2", "RedisCluster", f"{name}-redis", ns) or {}
        redis_status = redis_live.get("status") or {}
        replicas = sorted(set(pg.get("instanceNames") or []) - {pg.get("currentPrimary")})
        return [
            f"Cluster {name}-pg: {pg.get('phase', '-')}; primary {pg.get('currentPrimary', '-')}, "
            f"replicas {', '.join(replicas) or '-'} ({pg.get('readyInstances', 0)}/{pg.get('instances', 0)} ready)",
            f"Pooler {name}-pg-pooler-rw: {(pooler.get('status') or {}).get('readyReplicas', 0)} PgBouncer ready",
            f"RedisCluster {name}-redis: {redis_status.get('state', '-')}; "
            f"{redis_status.get('readyLeaderReplicas', 0)} leaders, {redis_status.get('readyFollowerReplicas', 0)} "
            "followers ready",
            *unscheduled(self.client.list("v1", "Pod", ns)),
        ]

    def check_monitoring(self, say: Any, seconds: float = 50.0) -> tuple[bool, str]:
        """Scrape what the cluster's ServiceMonitors select, send transfers through the gateway for
        ``seconds`` (every service gets requests; longer when a monitor scrapes less often: a rate
        needs two samples, so every job is scraped at least three times), then run every query of the
        platform's and the operator's alerts and of the dashboard: (every one selects live series, a
        report)."""
        assert self.client is not None and self.cluster is not None and self.cluster.plane is not None
        assert self.prometheus is not None and self.kube_state_metrics is not None
        meta = self.platform["metadata"]
        client = self.client
        monitors = client.list("monitoring.coreos.com/v1", "ServiceMonitor")
        folder = self.prometheus.workdir / "targets"
        found = monitoring.write_targets(self.client, monitors, folder)
        jobs = [job for m in monitors for job in monitoring.scrape_configs(m, folder)]
        self.prometheus.configure([*jobs, self.kube_state_metrics.scrape_config()])
        say(
            f"prometheus: scraping the {found} targets of {len(monitors)} ServiceMonitors and kube-state-metrics;"
            " traffic through the gateway"
        )
        endpoints = [e for m in monitors for e in m["spec"].get("endpoints") or []]
        intervals = [common.parse_duration(e.get("interval", "30s")).total_seconds() for e in endpoints]
        seconds = max(seconds, 3.5 * max(intervals, default=30.0))
        stop = threading.Event()

        def refresh() -> None:  # pods come and go (the HPAs, the policies' floors): as discovery would
            while not stop.wait(5):
                with contextlib.suppress(Exception):
                    monitoring.write_targets(client, monitors, folder)

        refresher = threading.Thread(target=refresh, daemon=True, name="targets")
        refresher.start()
        try:
            sent, failed = _drive_traffic(self._gateway(), seconds)
        finally:
            stop.set()
            refresher.join(10)
        rules = self.client.list("monitoring.coreos.com/v1", "PrometheusRule", meta["namespace"])
        rules += self.client.list("monitoring.coreos.com/v1", "PrometheusRule", chart.NAMESPACE)
        board = json.loads((chart.CHART / "dashboards" / "wallet-platform.json").read_text())
        queries = monitoring.expressions(rules, board, {"namespace": meta["namespace"], "platform": meta["name"]})
        result = monitoring.check(self.prometheus.url, queries)
        lines = [
            f"monitoring: {sent} requests answered through the gateway ({failed} rounds failed); "
            f"of {len(queries)} alert and dashboard queries, {len(result.live)} select live series",
            *(f"  no series: {item.source}: {why}" for item, why in result.dead),
        ]
        return not result.dead, "\n".join(lines)

    def _gateway(self) -> str:
        assert self.client is not None
        meta = self.platform["metadata"]
        service = self.client.get("v1", "Service", f"{meta['name']}-api-gateway", meta["namespace"])
        assert service is not None
        port = service["spec"]["ports"][0]["port"]
        return f"http://{service['spec']['clusterIP']}:{port}"

    def stop(self) -> None:
        for part in (self.kube_state_metrics, self.prometheus, self.cluster):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.stop()


def _drive_traffic(base: str, seconds: float) -> tuple[int, int]:
    """Users, accounts, payments, transfers (which call compliance and notification) and balance
    reads through the gateway for ``seconds``: (requests sent, requests that failed)."""

    def call(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(base + path, data, {"Content-Type": "application/json"}, method=method)
        with urllib.request.urlopen(request, timeout=5) as response:
            reply: dict[str, Any] = json.loads(response.read())
            return reply

    sent = failed = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            call("POST", "/v1/users", {"name": "demo"})
            source = call("POST", "/v1/accounts", {"owner": "demo"})["id"]
            target = call("POST", "/v1/accounts", {"owner": "demo-sink"})["id"]
            call("POST", "/v1/payments", {"account": source, "amount": "50"})
            for _ in range(2):
                call("POST", "/v1/transfers", {"from": source, "to": target, "amount": "1"})
                call("GET", f"/v1/accounts/{target}")
            sent += 8
        except (OSError, ValueError, KeyError):  # counted; the check below says what it did to the series
            failed += 1
        time.sleep(0.5)
    return sent, failed


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _why_not_ready(pod: dict[str, Any]) -> str:
    """A container waiting to start says on what; a running one, what its /readyz says."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    waiting = (statuses[0].get("state") or {}).get("waiting") if statuses else None
    if waiting:
        return f"{waiting.get('reason')}: {waiting.get('message') or ''}".strip()
    if (pod.get("status") or {}).get("phase") != "Running" or not pod["status"].get("podIP"):
        return str((pod.get("status") or {}).get("phase", "Pending"))
    return _readyz(pod["status"]["podIP"])


def _readyz(pod_ip: str) -> str:
    """What the reference service's /readyz says, in one line (the pod network is the host's too)."""
    try:
        with urllib.request.urlopen(f"http://{pod_ip}:8080/readyz", timeout=3) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
    except (OSError, ValueError) as exc:
        return f"readyz: {exc}"
    try:
        checks: dict[str, str] = json.loads(body).get("checks", {})
    except (ValueError, AttributeError):
        return str(body.decode(errors="replace"))[:120]
    return "; ".join(f"{k}: {v}" for k, v in checks.items() if v != "ok")[:160]


@contextlib.contextmanager
def running(workdir: pathlib.Path, example: pathlib.Path, policies: list[pathlib.Path], say: Any) -> Iterator[Demo]:
    demo = Demo(workdir, example, policies)
    try:
        demo.start(say)
        yield demo
    finally:
        demo.stop()
