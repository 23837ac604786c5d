"""Operator benchmark: ``python tests/benchmarks/bench_operator.py [--platforms 50]``.

Starts its own control plane and the operator (chart RBAC, ServiceAccount token), then measures:
- converge_1_s / converge_50_s: from applying 1 (then 50 more) WalletPlatforms until every rendered
  child exists and status says Reconciled for the current generation;
- kubectl_apply_50_s: ``kubectl apply --server-side`` of the same rendered objects for 50 platforms
  (in other namespaces), in the same run; ratio_50 = converge_50_s / kubectl_apply_50_s;
- noop_writes_50: API write requests (audit log, leases excluded) the operator sent during one full
  resync pass over the 50 converged platforms;
- operator_rss_mb_50: the operator's peak RSS (VmHWM).
The data tier is marked Ready the way CloudNativePG and redis-operator would (they do not run here).
Prints progress, then one JSON object as the last line."""

from __future__ import annotations

import argparse
import copy
import json
import pathlib
import subprocess
import sys
import tempfile
import time
from typing import Any

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from walletplatform import catalog, render  # noqa: E402
from walletplatform.clients import kube  # noqa: E402
from walletplatform.devenv import controlplane, crds, processes, toolchain  # noqa: E402
from walletplatform.devenv import operator as operator_env  # noqa: E402
from walletplatform.models import resources  # noqa: E402

from tests.integration import platforms  # noqa: E402

EXAMPLE = ROOT / "examples" / "walletplatform.yaml"
USER = f"system:serviceaccount:{operator_env.NAMESPACE}:{operator_env.ACCOUNT}"
RESYNC = 20.0


def say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def platform_in(namespace: str) -> dict[str, Any]:
    doc = copy.deepcopy(yaml.safe_load(EXAMPLE.read_text()))
    doc["metadata"]["namespace"] = namespace
    return dict(doc)


def rendered(doc: dict[str, Any], cat: catalog.Catalog) -> list[Any]:
    parsed = resources.parse_document(doc)
    assert isinstance(parsed, resources.WalletPlatform)
    return render.render_platform(catalog.resolve(parsed.metadata.name, parsed.metadata.namespace, parsed.spec, cat))


def create_namespaces(client: kube.Kube, names: list[str]) -> None:
    for name in names:
        client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, "bench")


def converged(client: kube.Kube, doc: dict[str, Any], expected: int) -> bool:
    ns, name = doc["metadata"]["namespace"], doc["metadata"]["name"]
    body = client.get(platforms.API, "WalletPlatform", name, ns) or {}
    reconciled = platforms.condition(body, "Reconciled") or {}
    if reconciled.get("status") != "True" or reconciled.get("observedGeneration") != body["metadata"]["generation"]:
        return False
    return len(platforms.children(client, ns, name, render.KINDS)) == expected


def converge(client: kube.Kube, docs: list[dict[str, Any]], expected: int, timeout: float) -> float:
    started = time.monotonic()
    for doc in docs:
        platforms.apply_platform(client, doc)
    pending = list(docs)
    while pending:
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{len(pending)} platforms not converged after {timeout:.0f}s")
        pending = [d for d in pending if not converged(client, d, expected)]
        time.sleep(0.5)
    return time.monotonic() - started


def resync_passes(op: operator_env.Operator) -> float:
    for line in op.metrics().splitlines():
        if line.startswith('wallet_operator_reconcile_duration_seconds_count{trigger="resync"}'):
            return float(line.split()[-1])
    return 0.0


def operator_writes(plane: controlplane.ControlPlane) -> int:
    return len([w for w in plane.write_requests(USER) if w["objectRef"].get("resource") != "leases"])


def settle(plane: controlplane.ControlPlane, timeout: float = 600) -> None:
    """Wait until the operator has written nothing for two resync periods: status changes while
    kube-controller-manager's HPA controller moves replicas are real changes, not no-op writes."""
    last, since, started = -1, time.monotonic(), time.monotonic()
    while time.monotonic() - since < 2 * RESYNC:
        if time.monotonic() - started > timeout:
            raise TimeoutError("operator writes did not settle")
        count = operator_writes(plane)
        if count != last:
            last, since = count, time.monotonic()
        time.sleep(1)
    say(f"settled after {time.monotonic() - started:.0f}s")


def peak_rss_mb(op: operator_env.Operator) -> float:
    assert op.process.popen is not None
    for line in pathlib.Path(f"/proc/{op.process.popen.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def kubectl_apply(
    client: kube.Kube,
    plane: controlplane.ControlPlane,
    binaries: toolchain.Binaries,
    work: pathlib.Path,
    count: int,
    cat: catalog.Catalog,
) -> float:
    """Seconds ``kubectl apply --server-side`` takes for the same rendered objects of ``count`` platforms."""
    names = [f"bench-kubectl-{i}" for i in range(count)]
    create_namespaces(client, names)
    manifest = work / "kubectl.yaml"
    objects = [obj for n in names for obj in rendered(platform_in(n), cat)]
    manifest.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    say(f"kubectl apply --server-side of the same {len(objects)} objects")
    argv = [str(binaries.kubectl), "--kubeconfig", str(plane.kubeconfig), "apply", "--server-side"]
    started = time.monotonic()
    subprocess.run([*argv, "--field-manager", "bench-kubectl", "-f", str(manifest)], check=True, capture_output=True)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platforms", type=int, default=50)
    args = parser.parse_args()
    count = args.platforms
    cat = catalog.load_catalog()
    work = pathlib.Path(tempfile.mkdtemp(prefix="wallet-bench-"))
    binaries = toolchain.ensure_binaries()
    plane = controlplane.ControlPlane(work / "controlplane", binaries).start()
    op: operator_env.Operator | None = None
    try:
        client = kube.Kube(plane.kubeconfig)
        crds.install(client)
        operator_env.install_rbac(client)
        kubeconfig = operator_env.operator_kubeconfig(client, plane, work / "operator.kubeconfig")
        op = operator_env.Operator(kubeconfig, work, "bench", {"WALLET_RESYNC_SECONDS": str(RESYNC)}).start()
        processes.wait_until(lambda: op is not None and op.role() == "leader", 60, "operator leading")
        expected = len(rendered(platform_in("x"), cat))

        say("converge 1 platform")
        create_namespaces(client, ["bench-1"])
        converge_1 = converge(client, [platform_in("bench-1")], expected, 300)
        say(f"converge_1_s={converge_1:.2f}")

        names = [f"bench-op-{i}" for i in range(count)]
        create_namespaces(client, names)
        docs = [platform_in(n) for n in names]
        say(f"converge {count} platforms ({count * expected} children)")
        converge_n = converge(client, docs, expected, 1800)
        say(f"converge_{count}_s={converge_n:.2f}")

        kubectl_n = kubectl_apply(client, plane, binaries, work, count, cat)
        say(f"kubectl_apply_{count}_s={kubectl_n:.2f}")

        say("marking the data tier Ready (as CloudNativePG / redis-operator would) and settling")
        for doc in [platform_in("bench-1"), *docs]:
            platforms.mark_data_ready(client, doc["metadata"]["namespace"], doc["metadata"]["name"])
        settle(plane)
        say("counting writes during one full resync pass")
        passes = resync_passes(op)
        before = operator_writes(plane)
        processes.wait_until(lambda: resync_passes(op) >= passes + count + 1, 3 * RESYNC + 60, "a full resync pass")
        writes = [w for w in plane.write_requests(USER) if w["objectRef"].get("resource") != "leases"][before:]
        result = {
            "platforms": count,
            "children_per_platform": expected,
            "converge_1_s": round(converge_1, 2),
            f"converge_{count}_s": round(converge_n, 2),
            f"kubectl_apply_{count}_s": round(kubectl_n, 2),
            f"ratio_{count}": round(converge_n / kubectl_n, 2),
            f"noop_writes_{count}": len(writes),
            f"operator_rss_mb_{count}": round(peak_rss_mb(op), 1),
        }
        if writes:
            say(f"no-op writes: {[(w['verb'], w['objectRef']) for w in writes[:10]]}")
        print(json.dumps(result))
        return 0
    finally:
        if op is not None:
            op.stop()
        plane.stop()


if __name__ == "__main__":
    sys.exit(main())
