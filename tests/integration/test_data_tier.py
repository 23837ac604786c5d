"""The real data tier: CloudNativePG and the OT redis-operator (built from their Go modules) reconcile
what the operator renders, on the local node, in a namespace that enforces the ``restricted`` Pod
Security Standard; no status is written by hand here.

The example platform reaches Ready=True from what the two operators report; the reference service
writes transfers to Postgres through PgBouncer and caches balances in Redis. Faults, each with its
measured time printed: a normal delete of the Postgres primary under write load (a new primary takes
writes within 10 s and no acknowledged transfer is lost: one replica is synchronous), a SIGKILL of a
Redis master's process (its shard serves again within 10 s, its keys kept). Data: with retainData the
Cluster, RedisCluster, their claims and the rows outlive the WalletPlatform and are adopted by a new
one; without it, everything is collected. Last, the committed dev stack's ``pulumi up`` with readiness
awaited completes on the same node."""

from __future__ import annotations

import base64
import json
import os
import pathlib
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from walletplatform import catalog
from walletplatform.clients import kube
from walletplatform.devenv import chart, cluster, processes, pulumi_engine
from walletplatform.stacks import components, program
from walletplatform.stacks import config as stack_config

from tests.conftest import ROOT
from tests.integration import platforms

pytestmark = pytest.mark.integration
NS = "wallet-data"
NAME = "wallet-dev"
PG = ("postgresql.cnpg.io/v1", "Cluster", f"{NAME}-pg")
REDIS = ("redis.redis.opstreelabs.in/v1beta2", "RedisCluster", f"{NAME}-redis")
VALUES = {"leaseSeconds": 6, "resyncSeconds": 5, "dependencyRetrySeconds": 5}
# CloudNativePG's own end-to-end limit for a new primary, and the same for a Redis shard.
FAILOVER_LIMIT_SECONDS = 10


@pytest.fixture(scope="module")
def client(data_cluster: cluster.LocalCluster) -> kube.Kube:
    assert data_cluster.client is not None and data_cluster.plane is not None
    chart.install(data_cluster.binaries.helm, data_cluster.plane.kubeconfig, dict(VALUES))
    return data_cluster.client


def kubectl(data_cluster: cluster.LocalCluster, *args: str) -> str:
    assert data_cluster.plane is not None
    result = subprocess.run(
        [str(data_cluster.binaries.kubectl), "--kubeconfig", str(data_cluster.plane.kubeconfig), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
    return result.stdout


def psql(data_cluster: cluster.LocalCluster, pod: str, sql: str) -> str:
    """``sql`` as the postgres superuser inside an instance pod (peer authentication on its socket)."""
    return kubectl(
        data_cluster, "exec", "-n", NS, pod, "-c", "postgres", "--", "psql", "-d", "wallet", "-tAc", sql
    ).strip()


def redis_cli(data_cluster: cluster.LocalCluster, pod: str, *command: str) -> str:
    return kubectl(
        data_cluster, "exec", "-n", NS, pod, "--", "sh", "-c",
        'exec redis-cli -a "$REDIS_PASSWORD" --no-auth-warning "$@"', "redis-cli", *command,
    ).strip()  # fmt: skip


def primary(client: kube.Kube) -> str:
    live = client.get(*PG[:2], PG[2], NS) or {}
    return str((live.get("status") or {}).get("currentPrimary") or "")


def gateway(client: kube.Kube) -> str:
    service = client.get("v1", "Service", f"{NAME}-api-gateway", NS)
    assert service is not None
    return f"http://{service['spec']['clusterIP']}:8080"


def call(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        base + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        reply: dict[str, Any] = json.loads(response.read())
        return reply


def component(client: kube.Kube, name: str) -> dict[str, Any]:
    body = platforms.get_platform(client, NS, NAME)
    return dict(((body.get("status") or {}).get("components") or {}).get(name) or {})


@pytest.fixture(scope="module")
def platform(client: kube.Kube, data_cluster: cluster.LocalCluster) -> Iterator[dict[str, Any]]:
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": labels}}, "wallet-tests")
    doc = platforms.platform_doc(ROOT / "examples" / "walletplatform.yaml", NS)
    started = time.monotonic()
    platforms.apply_platform(client, doc)
    platforms.wait_condition(client, NS, NAME, "Ready", "True", timeout=420)
    print(f"\nexample platform Ready=True {time.monotonic() - started:.0f}s after it was applied")
    yield doc


def test_the_example_platform_is_ready_from_what_the_data_operators_report(
    client: kube.Kube, data_cluster: cluster.LocalCluster, platform: dict[str, Any]
) -> None:
    pg = client.get(*PG[:2], PG[2], NS)
    assert pg is not None and pg["status"]["readyInstances"] == 3
    status = platforms.get_platform(client, NS, NAME)["status"]
    assert (status["postgres"], status["redis"]) == ("Ready", "Ready"), status
    postgres = component(client, "postgres")
    assert (postgres["ready"], postgres["message"]) == (True, "3/3 ready"), postgres
    redis = client.get(*REDIS[:2], REDIS[2], NS)
    assert redis is not None and redis["status"]["state"] == "Ready"
    assert component(client, "redis")["ready"] is True
    # 1 primary + 2 streaming replicas; ANY 1 of them synchronous (pg_stat_replication says quorum).
    states = psql(data_cluster, primary(client), "SELECT state, sync_state FROM pg_stat_replication").splitlines()
    assert sorted(states) == ["streaming|quorum", "streaming|quorum"], states
    assert psql(data_cluster, primary(client), "SHOW synchronous_standby_names").startswith("ANY 1 (")
    info = redis_cli(data_cluster, f"{NAME}-redis-leader-0", "cluster", "info")
    assert "cluster_state:ok" in info and "cluster_known_nodes:3" in info, info
    # Every data-tier pod was admitted under `restricted` and carries the platform's labels.
    pods = client.list("v1", "Pod", NS, selector=f"wallet.platform.io/platform={NAME}")
    names = {p["metadata"]["name"] for p in pods}
    assert {f"{NAME}-pg-1", f"{NAME}-redis-leader-0"} <= names
    assert any(n.startswith(f"{NAME}-pg-pooler-rw-") for n in names)
    # Our PodMonitor stays: CloudNativePG deleted one named like the cluster at every reconcile.
    monitor = ("monitoring.coreos.com/v1", "PodMonitor", f"{NAME}-pg-metrics", NS)
    created = (client.get(*monitor) or {}).get("metadata", {}).get("uid")
    time.sleep(3 * VALUES["resyncSeconds"])
    assert created and (client.get(*monitor) or {}).get("metadata", {}).get("uid") == created


def test_kubectl_wallet_status_shows_the_platform_as_a_tree(
    client: kube.Kube, data_cluster: cluster.LocalCluster, platform: dict[str, Any]
) -> None:
    """The CLI installed as a kubectl plugin: kubectl finds ``kubectl-wallet`` on PATH."""
    assert data_cluster.plane is not None
    bin_dir = pathlib.Path(sys.executable).parent
    assert (bin_dir / "kubectl-wallet").exists()
    result = subprocess.run(
        # kubectl refuses its own flags before a plugin's name: the kubeconfig goes to the plugin.
        [str(data_cluster.binaries.kubectl), "wallet", "status", NAME, "-n", NS,
         "--kubeconfig", str(data_cluster.plane.kubeconfig)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    tree = result.stdout
    assert tree.startswith(f"WalletPlatform {NS}/{NAME}  Ready=True (AllComponentsReady)"), tree
    assert f"{primary(client):<24} primary  healthy" in tree
    assert tree.count(" replica  healthy") == 2, tree
    assert "│  ├─ leaders    3/3 ready" in tree and "├─ waiting on  nothing" in tree
    print("\n" + tree)


def test_the_reference_service_writes_through_the_pooler_and_caches_in_redis(
    client: kube.Kube, platform: dict[str, Any]
) -> None:
    (transaction,) = client.list("v1", "Pod", NS, selector="app.kubernetes.io/name=transaction")
    env = {e["name"]: e.get("value") for e in transaction["spec"]["containers"][0]["env"]}
    assert env["DB_HOST"] == f"{NAME}-pg-pooler-rw" and env["REDIS_MODE"] == "cluster"
    base = gateway(client)
    source = call(base, "POST", "/v1/accounts", {"owner": "alice"})["id"]
    target = call(base, "POST", "/v1/accounts", {"owner": "bob"})["id"]
    call(base, "POST", "/v1/payments", {"account": source, "amount": "100"})
    transfer = call(base, "POST", "/v1/transfers", {"from": source, "to": target, "amount": "30"})
    assert transfer["amount"] == "30"
    first = call(base, "GET", f"/v1/accounts/{target}")
    assert (first["balance"], first["cached"]) == ("30.00", False)
    # The platform is Ready as soon as redis-operator reports the cluster ready (the watches tell the
    # operator at once); a service's client is made only once the slot map covers every shard (CI once
    # saw a client made half-way through the slot assignment miss for good), so read until a read is
    # served from Redis, the balance the same every time.
    reads = []

    def cached() -> bool:
        reads.append(call(base, "GET", f"/v1/accounts/{target}"))
        return bool(reads[-1]["cached"])

    processes.wait_until(cached, 30, "a balance served from Redis")
    assert {r["balance"] for r in reads} == {"30.00"}


def test_deleting_the_postgres_primary_under_write_load_loses_no_acknowledged_transfer(
    client: kube.Kube, data_cluster: cluster.LocalCluster, platform: dict[str, Any]
) -> None:
    base = gateway(client)
    source = call(base, "POST", "/v1/accounts", {"owner": "load"})["id"]
    target = call(base, "POST", "/v1/accounts", {"owner": "sink"})["id"]
    call(base, "POST", "/v1/payments", {"account": source, "amount": "10000"})
    acknowledged: list[tuple[float, int]] = []
    refused: list[float] = []
    stop = threading.Event()

    def write() -> None:
        while not stop.is_set():
            sent = time.monotonic()
            try:
                reply = call(base, "POST", "/v1/transfers", {"from": source, "to": target, "amount": "0.01"})
                acknowledged.append((sent, int(reply["id"])))
            except (urllib.error.URLError, OSError):
                refused.append(sent)
                time.sleep(0.05)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        processes.wait_until(lambda: len(acknowledged) >= 20, 30, "transfers flowing")
        old = primary(client)
        deleted = time.monotonic()
        client.delete("v1", "Pod", old, NS)  # a normal delete: smart shutdown, then fast, then failover
        processes.wait_until(lambda: primary(client) not in ("", old), 60, "a new primary")
        processes.wait_until(lambda: acknowledged[-1][0] > max([deleted, *refused]) + 1, 60, "writes flowing again")
        recovered = time.monotonic()
        # A request sent before that check may still be in flight and refused after it: the writer is
        # sequential, so once a transfer sent after the check is acknowledged, every request sent before
        # it has its answer, and the outage's refusals are all in ``refused``.
        processes.wait_until(lambda: acknowledged[-1][0] > recovered, 60, "a transfer sent after recovery acknowledged")
    finally:
        stop.set()
        writer.join(10)
    # Writes are back with the first acknowledged transfer sent after the outage's last refused one.
    outage = [t for t in refused if deleted < t < recovered]
    last_refused = max(outage, default=deleted)
    resumed = min((t for t, _ in acknowledged if t > last_refused), default=None)
    assert resumed is not None, (  # what the writer saw, relative to the delete, when it did not resume
        [round(t - deleted, 2) for t in refused[-10:]],
        [round(t - deleted, 2) for t, _ in acknowledged[-10:]],
        round(recovered - deleted, 2),
    )
    late = [t for t in refused if t >= recovered]
    print(
        f"\nprimary {old} deleted: writes refused {len(outage)} times "
        f"({(last_refused - min(outage, default=deleted)):.1f}s), transfers committed on {primary(client)} "
        f"{resumed - deleted:.1f}s after the delete; {len(late)} refused after that"
    )
    try:
        ids = {int(i) for i in psql(data_cluster, primary(client), "SELECT id FROM transfers").split()}
        lost = [i for _, i in acknowledged if i not in ids]
        assert lost == [] and len(acknowledged) > 20, (lost, len(acknowledged))
        assert resumed - deleted <= FAILOVER_LIMIT_SECONDS
    finally:  # the next tests need the whole cluster, whatever this one found
        processes.wait_until(
            lambda: (client.get(*PG[:2], PG[2], NS) or {}).get("status", {}).get("readyInstances") == 3,
            180,
            "the old primary back as a replica",
        )


def test_a_killed_redis_master_serves_its_shard_again_with_its_keys(
    client: kube.Kube, data_cluster: cluster.LocalCluster, platform: dict[str, Any]
) -> None:
    pod = f"{NAME}-redis-leader-0"
    secret = client.get("v1", "Secret", f"{NAME}-redis-auth", NS)
    assert secret is not None and len(base64.b64decode(secret["data"]["password"])) >= 32
    # A key in one of this master's slot ranges ("myself" in CLUSTER NODES), written to it.
    myself = next(line for line in redis_cli(data_cluster, pod, "cluster", "nodes").splitlines() if "myself" in line)
    ranges = [tuple(map(int, r.split("-"))) for r in myself.split()[8:] if "-" in r and not r.startswith("[")]
    assert ranges, myself
    key = next(
        f"k{i}"
        for i in range(2000)
        if any(lo <= int(redis_cli(data_cluster, pod, "cluster", "keyslot", f"k{i}")) <= hi for lo, hi in ranges)
    )
    assert redis_cli(data_cluster, pod, "set", key, "kept") == "OK"
    live = client.get("v1", "Pod", pod, NS)
    assert live is not None
    container = live["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
    assert data_cluster.node.containerd is not None
    killed = time.monotonic()
    data_cluster.node.containerd.ctr("tasks", "kill", "--signal", "SIGKILL", container)

    def serving() -> bool:
        try:
            return redis_cli(data_cluster, pod, "get", key) == "kept" and "cluster_state:ok" in redis_cli(
                data_cluster, pod, "cluster", "info"
            )
        except AssertionError:
            return False

    processes.wait_until(serving, 60, f"{pod} serving {key} again", interval=0.2)
    seconds = time.monotonic() - killed
    print(f"\nRedis master {pod} killed: its shard served {key} again after {seconds:.1f}s")
    assert seconds <= FAILOVER_LIMIT_SECONDS
    processes.wait_until(
        lambda: (client.get(*REDIS[:2], REDIS[2], NS) or {}).get("status", {}).get("state") == "Ready",
        120,
        "RedisCluster Ready again",
    )


def claims(client: kube.Kube) -> set[str]:
    return {c["metadata"]["name"] for c in client.list("v1", "PersistentVolumeClaim", NS)}


def test_retained_data_outlives_the_platform_and_is_adopted_and_unretained_data_is_collected(
    client: kube.Kube, data_cluster: cluster.LocalCluster, platform: dict[str, Any]
) -> None:
    before = psql(data_cluster, primary(client), "SELECT count(*) FROM transfers")
    kept_claims = claims(client)
    assert len(kept_claims) == 3 + 3 * 2  # Postgres: one per instance; Redis: data + nodes.conf per pod
    client.delete(platforms.API, "WalletPlatform", NAME, NS)
    # Every service collected before the platform is applied again: a Deployment the garbage collector
    # has not reached yet would be adopted, reported ready with its old pods, then collected after all.
    processes.wait_until(
        lambda: not client.list("apps/v1", "Deployment", NS, selector=f"wallet.platform.io/platform={NAME}"),
        180,
        "services collected",
    )
    assert client.get(*PG[:2], PG[2], NS) is not None and client.get(*REDIS[:2], REDIS[2], NS) is not None
    assert client.get("v1", "Secret", f"{NAME}-redis-auth", NS) is not None
    assert claims(client) == kept_claims
    assert psql(data_cluster, primary(client), "SELECT count(*) FROM transfers") == before

    platforms.apply_platform(client, platform)  # the same platform again: it adopts what was kept
    platforms.wait_condition(client, NS, NAME, "Ready", "True", timeout=300)
    # Ready follows the pods; the new Service's routes follow kube-proxy, a moment later.
    counted: list[int] = []

    def answered() -> bool:
        try:
            counted.append(int(call(gateway(client), "GET", "/v1/transfers/count")["count"]))
        except (urllib.error.URLError, OSError):
            return False
        return True

    processes.wait_until(answered, 30, "the recreated gateway answering")
    assert counted[-1] == int(before)
    assert claims(client) == kept_claims

    unretained = {**platform, "spec": {**platform["spec"], "retainData": False}}
    platforms.apply_platform(client, unretained)
    processes.wait_until(
        lambda: all(
            (client.get(api, kind, name, NS) or {}).get("metadata", {}).get("ownerReferences")
            for api, kind, name in (PG, REDIS)
        ),
        60,
        "the data tier owned by the platform",
    )
    client.delete(platforms.API, "WalletPlatform", NAME, NS)
    processes.wait_until(
        lambda: client.get(*PG[:2], PG[2], NS) is None and client.get(*REDIS[:2], REDIS[2], NS) is None,
        180,
        "Cluster and RedisCluster collected",
    )
    processes.wait_until(lambda: not claims(client), 180, "every claim collected")


def test_the_dev_stack_comes_up_with_readiness_awaited_on_the_real_node(
    client: kube.Kube, data_cluster: cluster.LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`pulumi up` of the committed dev stack with awaitReadiness at its default (true): the provider's
    readiness checks pass on our objects with real pods behind them. Runs after the platform above was
    collected: two dev platforms do not fit one small node."""
    assert data_cluster.plane is not None
    engine = pulumi_engine.Engine(
        tmp_path_factory.mktemp("pulumi"), data_cluster.plane.kubeconfig, data_cluster.binaries
    )
    values = yaml.safe_load((ROOT / "stacks" / "config" / "Pulumi.dev.yaml").read_text())["config"]
    assert "wallet-platform:awaitReadiness" not in values  # the default: await
    path = engine.home / "Pulumi.dev-node.yaml"
    path.write_text(yaml.safe_dump({"config": values}))
    stack = engine.stack("dev-node", path, program.run)
    resolved = stack_config.parse_stack_config(
        {"mode": values["wallet-platform:mode"], "platform": values["wallet-platform:platform"]},
        catalog.load_catalog(),
    ).resolved
    objects = components.platform_objects(resolved)
    started = time.monotonic()
    up = stack.up()
    print(
        f"\npulumi up (dev, readiness awaited, real node): {time.monotonic() - started:.0f}s for {len(objects)} objects"
    )
    assert {op: n for op, n in (up.summary.resource_changes or {}).items() if n} == {"create": len(objects) + 3}
    for obj in objects:
        if obj["kind"] == "Deployment":
            live = client.get("apps/v1", "Deployment", obj["metadata"]["name"], resolved.namespace) or {}
            assert (live.get("status") or {}).get("availableReplicas", 0) >= 1, obj["metadata"]["name"]
    stack.destroy()
    stack.workspace.remove_stack(stack.name)
