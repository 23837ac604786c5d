"""The README's main command, as CI runs it: ``walletctl demo --exit-when-ready`` starts everything
(a local cluster with a real node, the operator in-cluster from its chart), prints the summary, exits
0 once the platform is reconciled and every service's pods run, and leaves nothing behind on the
host (processes, interfaces, routes, iptables rules, mounts, sysctls)."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest
from walletplatform.devenv import hostnet

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("root")]


def test_demo_exits_zero_once_reconciled_and_tears_down(tmp_path: pathlib.Path) -> None:
    before = hostnet.host_state()
    result = subprocess.run(
        [sys.executable, "-m", "walletplatform.cli.main", "demo", "--exit-when-ready", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    # The phases, timed, and what the monitoring check found.
    print("\n" + "\n".join(line for line in out.splitlines() if line.startswith(("[", "monitoring", "  no series"))))
    assert "Reconciled  True   Applied: all 53 objects applied" in out
    assert "Ready       True" in out, out
    assert "wallet-dev-transaction" in out and "wallet-scaler" in out
    assert "PrometheusHealthy: True" in out and "predictive:" in out
    # Real pods: every pod of every service Running and Ready on the real data tier (the policies'
    # evening schedule may have raised transaction and account to 3).
    for service in ("api-gateway", "user", "account", "transaction", "payment", "notification", "compliance"):
        found = re.search(rf"wallet-dev-{service} +(\d+)/(\d+) Running  (\d+)/(\d+) Ready", out)
        assert found and len(set(found.groups())) == 1 and found.group(1) != "0", (service, out)
    assert "Cluster wallet-dev-pg: Cluster in healthy state; primary wallet-dev-pg-" in out
    assert "(3/3 ready)" in out and "Pooler wallet-dev-pg-pooler-rw: 1 PgBouncer ready" in out
    assert "RedisCluster wallet-dev-redis: Ready; 3 leaders, 0 followers ready" in out
    assert " leads (wallet-operator chart, namespace wallet-system)" in out
    # Every alert and dashboard query selects series Prometheus scraped from the running services and
    # operator and from kube-state-metrics (the demo exits 1 otherwise).
    answered = re.search(r"monitoring: (\d+) requests answered through the gateway", out)
    assert answered and int(answered.group(1)) > 0, out
    checked = re.search(r"of (\d+) alert and dashboard queries, (\d+) select live series", out)
    assert checked and checked.group(1) == checked.group(2) and "  no series:" not in out, out
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True, check=False)
    assert leftovers.stdout.strip() == "", "demo processes outlived it"
    assert hostnet.host_state() == before
