"""The dev environment's Prometheus scrapes what the platform's ServiceMonitors select, and every
expression of the rendered alerts and the dashboard is checked against those live series.

There is no prometheus-operator here, and Debian's Prometheus is built without Kubernetes discovery
(``kubernetes_sd_configs`` is not a field it knows): ``scrape_configs`` makes of a ServiceMonitor the
job prometheus-operator would (one per endpoint, honorLabels respected) with file-based discovery,
and ``write_targets`` writes those files from the Services and EndpointSlices the API server has
(ready endpoints of the matching Services' named port, labelled namespace, service, pod, job and
endpoint as prometheus-operator labels them). ``check`` then runs each query: a query that selects
nothing is a bug (a label the scrape does not set, a counter that does not exist before its first
increment); so is one that only finds series that were not scraped in the last minutes (the demo's
backfilled history has no job)."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import re
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

import promql_parser

from walletplatform.clients import kube
from walletplatform.models import common, promql

FRESH = "3m"
COMPARISONS = {"==", "!=", ">", "<", ">=", "<="}


def _job(monitor: dict[str, Any], index: int) -> str:
    meta = monitor["metadata"]
    return f"serviceMonitor/{meta['namespace']}/{meta['name']}/{index}"


def scrape_configs(monitor: dict[str, Any], folder: pathlib.Path) -> list[common.JsonValue]:
    """One scrape job per endpoint of a ServiceMonitor, its targets in ``folder`` (``write_targets``)."""
    jobs: list[common.JsonValue] = []
    for index, endpoint in enumerate(monitor["spec"].get("endpoints") or []):
        name = _job(monitor, index)
        jobs.append(
            {
                "job_name": name,
                "honor_labels": bool(endpoint.get("honorLabels", False)),
                "scrape_interval": endpoint.get("interval", "30s"),
                "metrics_path": endpoint.get("path", "/metrics"),
                "file_sd_configs": [{"files": [str(folder / _file(name))], "refresh_interval": "5s"}],
            }
        )
    return jobs


def _file(job: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_.-]", "_", job) + ".json"


def targets(client: kube.Kube, monitor: dict[str, Any], index: int) -> list[common.JsonValue]:
    """The file_sd groups of one endpoint: each ready address of each matching Service's named port."""
    spec = monitor["spec"]
    port_name = spec["endpoints"][index]["port"]
    namespaces = (spec.get("namespaceSelector") or {}).get("matchNames") or [monitor["metadata"]["namespace"]]
    match = (spec.get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(match.items())) or None
    groups: list[common.JsonValue] = []
    for namespace in namespaces:
        for service in client.list("v1", "Service", namespace, selector):
            name = service["metadata"]["name"]
            slices = client.list(
                "discovery.k8s.io/v1", "EndpointSlice", namespace, f"kubernetes.io/service-name={name}"
            )
            for piece in slices:
                port = next((p["port"] for p in piece.get("ports") or [] if p.get("name") == port_name), None)
                if port is None:
                    continue
                for address in piece.get("endpoints") or []:
                    if (address.get("conditions") or {}).get("ready") is False:
                        continue
                    pod = (address.get("targetRef") or {}).get("name", "")
                    labels = {"namespace": namespace, "service": name, "pod": pod, "job": name, "endpoint": port_name}
                    groups += [{"targets": [f"{ip}:{port}"], "labels": labels} for ip in address.get("addresses", [])]
    return groups


def write_targets(client: kube.Kube, monitors: Sequence[dict[str, Any]], folder: pathlib.Path) -> int:
    """Write every job's target file (atomically: Prometheus watches them); the number of targets."""
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for monitor in monitors:
        for index in range(len(monitor["spec"].get("endpoints") or [])):
            groups = targets(client, monitor, index)
            count += len(groups)
            path = folder / _file(_job(monitor, index))
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(groups))
            temporary.replace(path)
    return count


@dataclasses.dataclass(frozen=True)
class Expression:
    source: str  # e.g. "alert WalletErrorRatioHigh (transaction)" or "panel transaction: 5xx ratio"
    query: str
    # False for an alert whose query is empty by design while all is well (``absent(x) or ...``):
    # then only its selectors must find scraped series.
    must_return: bool = True


def _without_threshold(expr: str) -> Expression:
    """An alert's query without its final comparison with a number: what it measures, which must
    return series even while the alert is quiet."""
    node = promql_parser.parse(expr)
    if (
        isinstance(node, promql_parser.BinaryExpr)
        and str(node.op) in COMPARISONS
        and isinstance(node.rhs, promql_parser.NumberLiteral)
    ):
        return Expression("", str(node.lhs))
    return Expression("", expr, must_return=False)


def expressions(
    rules: Sequence[dict[str, Any]], dashboard: dict[str, Any], variables: dict[str, str]
) -> list[Expression]:
    """Every alert and recording rule of ``rules`` (PrometheusRules) and every dashboard query with a
    selector, its Grafana ``variables`` ($namespace...) filled in."""
    found: list[Expression] = []
    for rule in rules:
        for group in rule["spec"]["groups"]:
            for item in group["rules"]:
                name = item.get("alert") or item.get("record")
                owner = item.get("labels", {}).get("service") or group["name"]
                measured = _without_threshold(item["expr"])
                found.append(dataclasses.replace(measured, source=f"alert {name} ({owner})"))
    for panel in dashboard.get("panels", []):
        for target in panel.get("targets", []):
            query = str(target["expr"])
            for key, value in variables.items():
                query = query.replace(f"${key}", value)
            if promql.selectors(query):
                found.append(Expression(f"panel {panel['title']}: {target.get('legendFormat', '')}", query))
    return found


def _query(url: str, query: str) -> list[Any]:
    address = f"{url}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    with urllib.request.urlopen(address, timeout=10) as response:
        answer = json.loads(response.read())
    if answer.get("status") != "success":
        raise RuntimeError(f"Prometheus refused {query!r}: {answer.get('error')}")
    result: list[Any] = answer["data"]["result"]
    return result


def _scraped(selector: str) -> str:
    """The selector narrowed to scraped series (a scrape sets ``job``; the backfill does not)."""
    return selector[:-1] + (',job!=""}' if not selector.endswith("{}") else 'job!=""}')


@dataclasses.dataclass(frozen=True)
class Report:
    live: list[Expression]
    dead: list[tuple[Expression, str]]  # with why


def check(url: str, queries: Sequence[Expression]) -> Report:
    """Run every query on the Prometheus at ``url``; each must return series, and each of its
    selectors must select series scraped in the last FRESH."""
    live, dead = [], []
    for item in queries:
        why = "" if not item.must_return or _query(url, item.query) else "returns no series"
        for selector in promql.selectors(item.query, required=True):  # not the 5xx of `errors or vector(0)`
            if not why and not _query(url, f"count(last_over_time({_scraped(selector)}[{FRESH}]))"):
                why = f"{selector} has no series scraped in the last {FRESH}"
        if why:
            dead.append((item, why))
        else:
            live.append(item)
    return Report(live, dead)
