"""Operator benchmark: ``python tests/benchmarks/bench_operator.py [--sizes 1,50,200,500]``.

Starts its own control plane and the operator (chart RBAC, ServiceAccount token), then grows the
number of dev-example WalletPlatforms through ``--sizes`` (each step adds the platforms that take the
count to the next size, the earlier ones still there) and measures at each size:
- converge_s: from applying the added platforms until every rendered child of each exists and its
  status says Reconciled for the current generation;
- kubectl_s: ``kubectl apply --server-side`` of the same rendered objects (as many platforms, in other
  namespaces), in the same run; ratio = converge_s / kubectl_s;
- noop_requests: the operator's API requests during one full no-op resync pass over every platform, by
  verb and resource (the audit log records service accounts' reads and every write; leases excluded);
- drift_delete_s / drift_edit_s: from deleting one platform's api-gateway Deployment, and from editing
  its HPA's maxReplicas, until the operator has repaired it;
- rss_mb: the operator's peak RSS (VmHWM).
No data-tier operator runs here: the platforms wait for their data tier (Ready False) and the handler's
retry is set to an hour so that waiting is not work. Prints progress, then one JSON object."""

from __future__ import annotations

import argparse
import calendar
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
from walletplatform.render import labels  # noqa: E402

from tests.integration import platforms  # noqa: E402

EXAMPLE = ROOT / "examples" / "walletplatform.yaml"
USER = f"system:serviceaccount:{operator_env.NAMESPACE}:{operator_env.ACCOUNT}"
RESYNC = 30.0


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


def reconciled(body: dict[str, Any]) -> bool:
    """Status says Reconciled for the current generation: every child was applied (it is written last)."""
    condition = platforms.condition(body, "Reconciled") or {}
    return condition.get("status") == "True" and condition.get("observedGeneration") == body["metadata"]["generation"]


def converge(client: kube.Kube, docs: list[dict[str, Any]], expected: int, timeout: float) -> float:
    """Apply ``docs``, then poll one LIST of the platforms (not a request per platform: at 500 that
    would load the API server the operator is measured against) until each is reconciled."""
    started = time.monotonic()
    for doc in docs:
        platforms.apply_platform(client, doc)
    pending = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in docs}
    while pending:
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{len(pending)} platforms not converged after {timeout:.0f}s")
        done = {
            (b["metadata"]["namespace"], b["metadata"]["name"])
            for b in client.list(platforms.API, "WalletPlatform")
            if reconciled(b)
        }
        pending -= done
        time.sleep(0.1 if len(docs) <= 5 else 0.5)  # a fine clock for one platform; little load for many
    elapsed = time.monotonic() - started
    for doc in (docs[0], docs[-1]):  # and every rendered child is there
        found = platforms.children(client, doc["metadata"]["namespace"], doc["metadata"]["name"], render.KINDS)
        assert len(found) == expected, (doc["metadata"]["namespace"], len(found), expected)
    return elapsed


def resync_passes(op: operator_env.Operator) -> float:
    for line in op.metrics().splitlines():
        if line.startswith('wallet_operator_reconcile_duration_seconds_count{trigger="resync"}'):
            return float(line.split()[-1])
    return 0.0


def reconcile_seconds(op: operator_env.Operator) -> dict[str, float]:
    """Seconds the operator spent in reconcile passes so far, by trigger (its own histogram's sums)."""
    found = {}
    for line in op.metrics().splitlines():
        if line.startswith("wallet_operator_reconcile_duration_seconds_sum{"):
            trigger = line.split('trigger="')[1].split('"')[0]
            found[trigger] = round(float(line.split()[-1]), 2)
    return found


def operator_requests(plane: controlplane.ControlPlane) -> list[dict[str, Any]]:
    return [r for r in plane.requests(USER) if r.get("objectRef", {}).get("resource") != "leases"]


def operator_writes(plane: controlplane.ControlPlane) -> int:
    """Writes of the reconcile passes (children, status): not Kopf's bookkeeping annotations on the
    WalletPlatforms, which it patches while a handler's retry is pending (the data tier never comes)."""
    return len(
        [
            r
            for r in operator_requests(plane)
            if r["verb"] in controlplane.WRITE_VERBS
            and not (r["objectRef"].get("resource") == "walletplatforms" and not r["objectRef"].get("subresource"))
        ]
    )


def settle(plane: controlplane.ControlPlane, timeout: float = 1800) -> None:
    """Wait until the operator has written nothing for two resync periods."""
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


OTHER_LABEL = "bench.platform.io/platformx"  # as long as labels.PLATFORM_LABEL: the same bytes to apply


def unlabelled(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = obj["metadata"]
    names = {labels.PLATFORM_LABEL: OTHER_LABEL}
    relabelled = {names.get(key, key): value for key, value in metadata["labels"].items()}
    return {**obj, "metadata": {**metadata, "labels": relabelled}}


def kubectl_apply(
    client: kube.Kube,
    plane: controlplane.ControlPlane,
    binaries: toolchain.Binaries,
    work: pathlib.Path,
    names: list[str],
    cat: catalog.Catalog,
) -> float:
    """Seconds ``kubectl apply --server-side`` takes for the rendered objects of platforms in ``names``.

    Each object's platform label gets another key of the same length: the operator watches that label
    in every namespace, and with it would hold kubectl's copies in its cache too (twice the children of
    the platforms it runs, a memory cost no real cluster has)."""
    create_namespaces(client, names)
    manifest = work / "kubectl.yaml"
    objects = [unlabelled(obj) for n in names for obj in rendered(platform_in(n), cat)]
    manifest.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    say(f"kubectl apply --server-side of the same {len(objects)} objects")
    argv = [str(binaries.kubectl), "--kubeconfig", str(plane.kubeconfig), "apply", "--server-side"]
    started = time.monotonic()
    subprocess.run([*argv, "--field-manager", "bench-kubectl", "-f", str(manifest)], check=True, capture_output=True)
    return time.monotonic() - started


def noop_pass(op: operator_env.Operator, plane: controlplane.ControlPlane, count: int) -> dict[str, int]:
    """The operator's requests, by "verb resource[/subresource]", during one full resync pass over ``count``
    platforms."""
    settle(plane)
    passes = resync_passes(op)
    before = len(operator_requests(plane))
    processes.wait_until(lambda: resync_passes(op) >= passes + count, 3 * RESYNC + 600, "a full resync pass")
    counted: dict[str, int] = {}
    for request in operator_requests(plane)[before:]:
        ref = request.get("objectRef", {})
        resource = ref.get("resource", request.get("requestURI"))
        key = f"{request['verb']} {resource}" + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        counted[key] = counted.get(key, 0) + 1
    return dict(sorted(counted.items()))


def served(client: kube.Kube) -> bool:
    try:
        client.list(platforms.API, "WalletPlatform")
        client.list(platforms.API, "ScalingPolicy")
    except kube.ApiError:
        return False
    return True


def _at(event: dict[str, Any]) -> float:
    stamp = str(event["requestReceivedTimestamp"]).rstrip("Z")
    whole, _, fraction = stamp.partition(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float(f"0.{fraction or 0}")


def timeline(plane: controlplane.ControlPlane, namespace: str) -> dict[str, float]:
    """Where one platform's convergence went, from the audit log: seconds after its apply of the
    operator's first request about it, its first and last child write, and its status writes."""
    everyone = [
        json.loads(line) for line in plane.audit_log.read_text().splitlines() if f'"namespace":"{namespace}"' in line
    ]
    done = [e for e in everyone if e.get("stage") == "ResponseComplete"]
    applied = min(
        _at(e) for e in done if e["objectRef"].get("resource") == "walletplatforms" and e["user"]["username"] != USER
    )
    mine = [e for e in done if e["user"]["username"] == USER]
    children = [
        _at(e) for e in mine if e["verb"] in ("patch", "create") and e["objectRef"].get("resource") != "walletplatforms"
    ]
    status = [_at(e) for e in mine if e["objectRef"].get("subresource") == "status"]
    return {
        "first_request": round(min(_at(e) for e in mine) - applied, 3),
        "first_child_write": round(min(children) - applied, 3),
        "last_child_write": round(max(children) - applied, 3),
        "first_status_write": round(min(status) - applied, 3),
    }


def drift(client: kube.Kube, namespace: str) -> tuple[float, float]:
    """Seconds to repair a deleted api-gateway Deployment, then an edited api-gateway HPA maxReplicas."""
    name = "wallet-dev-api-gateway"
    before = client.get("apps/v1", "Deployment", name, namespace)
    hpa = client.get("autoscaling/v2", "HorizontalPodAutoscaler", name, namespace)
    assert before is not None and hpa is not None
    started = time.monotonic()
    client.delete("apps/v1", "Deployment", name, namespace)
    processes.wait_until(
        lambda: (
            (client.get("apps/v1", "Deployment", name, namespace) or {}).get("metadata", {}).get("uid")
            not in (None, before["metadata"]["uid"])
        ),
        120,
        "the deleted Deployment back",
        interval=0.05,
    )
    deleted = time.monotonic() - started
    maximum = hpa["spec"]["maxReplicas"]

    def edit(obj: dict[str, Any]) -> None:
        obj["spec"]["maxReplicas"] = maximum + 5

    started = time.monotonic()
    platforms.hand_edit(client, "autoscaling/v2", "HorizontalPodAutoscaler", name, namespace, edit)
    processes.wait_until(
        lambda: (
            (client.get("autoscaling/v2", "HorizontalPodAutoscaler", name, namespace) or {})["spec"]["maxReplicas"]
            == maximum
        ),
        120,
        "the edited maxReplicas back",
        interval=0.05,
    )
    return deleted, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,50,200,500", help="platform counts, ascending, comma-separated")
    args = parser.parse_args()
    sizes = [int(part) for part in args.sizes.split(",")]
    cat = catalog.load_catalog()
    work = pathlib.Path(tempfile.mkdtemp(prefix="wallet-bench-"))
    binaries = toolchain.ensure_binaries()
    plane = controlplane.ControlPlane(work / "controlplane", binaries).start()
    op: operator_env.Operator | None = None
    try:
        client = kube.Kube(plane.kubeconfig)
        crds.install(client)
        # A CRD just installed is answered 429 (its watch cache initialising) for about a second: Kopf's
        # first LIST then waits a one-second retry, which once counted as the operator's converge time.
        processes.wait_until(lambda: served(client), 60, "the API server serving the new CRDs")
        operator_env.install_rbac(client)
        kubeconfig = operator_env.operator_kubeconfig(client, plane, work / "operator.kubeconfig")
        env = {"WALLET_RESYNC_SECONDS": str(RESYNC), "WALLET_DEPENDENCY_RETRY_SECONDS": "3600"}
        op = operator_env.Operator(kubeconfig, work, "bench", env).start()
        processes.wait_until(lambda: op is not None and op.role() == "leader", 60, "operator leading")
        expected = len(rendered(platform_in("x"), cat))
        results = []
        present = 0
        for size in sizes:
            names = [f"bench-op-{i}" for i in range(present, size)]
            create_namespaces(client, names)
            docs = [platform_in(n) for n in names]
            say(f"converge {len(docs)} more platforms ({len(docs) * expected} children), {size} in all")
            converge_s = converge(client, docs, expected, 3600)
            say(f"converged in {converge_s:.2f}s; reconcile time: {reconcile_seconds(op)}")
            if len(docs) == 1:
                say(f"where the time went (s after the apply, audit log): {timeline(plane, names[0])}")
            kubectl_s = kubectl_apply(
                client, plane, binaries, work, [f"bench-kubectl-{i}" for i in range(present, size)], cat
            )
            present = size
            requests = noop_pass(op, plane, size)
            say(f"no-op resync pass over {size}: {requests}")
            deleted, edited = drift(client, "bench-op-0")
            row = {
                "platforms": size,
                "added": len(docs),
                "objects": size * expected,
                "converge_s": round(converge_s, 2),
                "kubectl_s": round(kubectl_s, 2),
                "ratio": round(converge_s / kubectl_s, 2),
                "noop_requests": requests,
                "noop_writes": sum(n for key, n in requests.items() if key.split()[0] in controlplane.WRITE_VERBS),
                "drift_delete_s": round(deleted, 2),
                "drift_edit_s": round(edited, 2),
                "rss_mb": round(peak_rss_mb(op), 1),
            }
            say(json.dumps(row))
            results.append(row)
        print(json.dumps({"children_per_platform": expected, "resync_s": RESYNC, "sizes": results}))
        return 0
    finally:
        if op is not None:
            op.stop()
        plane.stop()


if __name__ == "__main__":
    sys.exit(main())
