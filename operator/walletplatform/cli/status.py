"""``walletctl status NAME`` (also ``kubectl wallet status NAME``: the same program installed as the
kubectl plugin ``kubectl-wallet``): one platform as a tree, read from the cluster, in the manner of
``kubectl cnpg status``: conditions, every service (pods ready, the floor, the HPA's desired and
maximum), Postgres (primary, replicas, the pooler) and Redis (leaders, followers) as their operators
report them, and the platform's last events."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

import urllib3

from walletplatform import API_GROUP, API_VERSION
from walletplatform.cli import explain
from walletplatform.clients import kube, kubeconfig
from walletplatform.models import errors
from walletplatform.render import labels

API = f"{API_GROUP}/{API_VERSION}"
EXIT_NOT_FOUND = 1


def _status(obj: dict[str, Any] | None) -> dict[str, Any]:
    return dict((obj or {}).get("status") or {})


@dataclasses.dataclass
class Observed:
    """What the tree is drawn from, as the API returns it."""

    platform: dict[str, Any]
    hpas: dict[str, dict[str, Any]]
    deployments: dict[str, dict[str, Any]]
    postgres: dict[str, Any] | None
    pooler: dict[str, Any] | None
    redis: dict[str, Any] | None
    events: list[dict[str, Any]]


def _branches(items: list[str], indent: str) -> list[str]:
    return [f"{indent}{'└─' if i == len(items) - 1 else '├─'} {item}" for i, item in enumerate(items)]


def _services(seen: Observed, name: str) -> list[str]:
    rows = []
    for service in [s["name"] for s in seen.platform.get("spec", {}).get("services", [])]:
        child = labels.service_name(name, service)
        hpa, deployment = seen.hpas.get(child) or {}, seen.deployments.get(child) or {}
        spec = hpa.get("spec") or {}
        ready, total = _status(deployment).get("readyReplicas", 0), _status(deployment).get("replicas", 0)
        rows.append(
            f"{service:<13} {ready}/{total} ready   floor {spec.get('minReplicas', '-')}   "
            f"HPA desired {_status(hpa).get('desiredReplicas', '-')} (max {spec.get('maxReplicas', '-')})"
        )
    return ["├─ services", *_branches(rows, "│  ")]


def _postgres(seen: Observed, name: str) -> list[str]:
    pg = _status(seen.postgres)
    phase = pg.get("phase") or "no status (is CloudNativePG running?)"
    healthy = set((pg.get("instancesStatus") or {}).get("healthy") or [])
    rows = [
        f"{instance:<24} {'primary' if instance == pg.get('currentPrimary') else 'replica':<8} "
        f"{'healthy' if instance in healthy else 'not healthy'}"
        for instance in sorted(pg.get("instanceNames") or [])
    ]
    if seen.pooler is not None:
        pooled = _status(seen.pooler)
        ready = f"{pooled.get('readyReplicas', 0)}/{pooled.get('replicas', 0)} ready"
        rows.append(f"pooler {seen.pooler['metadata']['name']}  {ready}")
    else:
        rows.append("no pooler")
    return [f"├─ postgres  Cluster {labels.postgres_name(name)}: {phase}", *_branches(rows, "│  ")]


def _redis(seen: Observed, name: str) -> list[str]:
    rs, spec = _status(seen.redis), (seen.redis or {}).get("spec") or {}
    state = rs.get("state") or "no status (is redis-operator running?)"
    leaders, followers = (spec.get(role) or {} for role in ("redisLeader", "redisFollower"))
    rows = [
        f"leaders    {rs.get('readyLeaderReplicas', 0)}/{leaders.get('replicas', '-')} ready",
        f"followers  {rs.get('readyFollowerReplicas', 0)}/{followers.get('replicas', '-')} ready",
    ]
    return [f"├─ redis  RedisCluster {labels.redis_name(name)}: {state}", *_branches(rows, "│  ")]


def render_tree(seen: Observed) -> str:
    """The tree, from the objects as the API returns them (pure: tested with fixtures)."""
    meta, status = seen.platform["metadata"], _status(seen.platform)
    name = meta["name"]
    conditions = "  ".join(f"{c['type']}={c['status']} ({c.get('reason', '')})" for c in status.get("conditions", []))
    components = status.get("components") or {}
    waiting = [f"{c}: {v.get('message', '')}" for c, v in components.items() if not v.get("ready")]
    recent = sorted(seen.events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")[-5:]
    events = [f"{e.get('type', '')} {e.get('reason', '')}: {e.get('message', '')}" for e in recent] or ["none"]
    lines = [
        f"WalletPlatform {meta['namespace']}/{name}  {conditions or 'no status yet'}",
        *_services(seen, name),
        *_postgres(seen, name),
        *_redis(seen, name),
        f"├─ waiting on  {'; '.join(waiting) if waiting else 'nothing'}",
        "└─ last events",
        *_branches(events, "   "),
    ]
    return "\n".join(lines) + "\n"


def cmd_status(args: argparse.Namespace) -> int:
    ns, name = args.namespace, args.name
    try:
        client = kube.Kube(args.kubeconfig or explain.default_kubeconfig())
        platform = client.get(API, "WalletPlatform", name, ns)
        if platform is None:
            print(f"WalletPlatform {ns}/{name} not found", file=sys.stderr)
            return EXIT_NOT_FOUND
        selector = f"{labels.PLATFORM_LABEL}={name}"
        hpa_list = client.list("autoscaling/v2", "HorizontalPodAutoscaler", ns, selector)
        seen = Observed(
            platform=platform,
            hpas={h["metadata"]["name"]: h for h in hpa_list},
            deployments={d["metadata"]["name"]: d for d in client.list("apps/v1", "Deployment", ns, selector)},
            postgres=_optional(client, "postgresql.cnpg.io/v1", "Cluster", labels.postgres_name(name), ns),
            pooler=client.get("apps/v1", "Deployment", f"{labels.postgres_name(name)}-pooler-rw", ns),
            redis=_optional(client, "redis.redis.opstreelabs.in/v1beta2", "RedisCluster", labels.redis_name(name), ns),
            events=[e for e in client.list("v1", "Event", ns) if _about(e, name)],
        )
    except kubeconfig.ConfigError as exc:
        raise errors.SpecError([errors.Problem(path="--kubeconfig", message=str(exc))]) from None
    except (kube.ApiError, urllib3.exceptions.HTTPError, OSError) as exc:
        print(f"cannot read WalletPlatform {ns}/{name}: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
    print(render_tree(seen), end="")
    return 0


def _about(event: dict[str, Any], name: str) -> bool:
    involved = event.get("involvedObject") or {}
    return bool(involved.get("kind") == "WalletPlatform" and involved.get("name") == name)


def _optional(client: kube.Kube, api_version: str, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    """The object, or None when it does not exist or its kind is not served (no data-tier CRDs)."""
    return client.get(api_version, kind, name, namespace) if client.served(api_version, kind) else None


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    text = "show one WalletPlatform as a tree: services, Postgres, Redis, conditions, last events"
    parser = sub.add_parser("status", help=text, description=text)
    parser.add_argument("name", help="WalletPlatform name")
    explain.add_cluster_arguments(parser)
    parser.set_defaults(func=cmd_status)
