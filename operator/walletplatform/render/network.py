"""NetworkPolicy of a service: default deny, then only the traffic the catalog says it needs.

Ingress: from the services that call it (the gateway from anywhere), and scrapes of the metrics port.
Egress: DNS, the services it calls, Postgres (pooler and instances) and Redis when it depends on them,
and HTTPS outside the cluster only for services that talk to external providers."""

from __future__ import annotations

from walletplatform.catalog import ResolvedPlatform
from walletplatform.models import common, service
from walletplatform.render import labels

_DNS: common.JsonValue = {
    "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}


def _pods(match: dict[str, str]) -> common.JsonValue:
    return {"podSelector": {"matchLabels": dict(match)}}


def render_network_policy(platform: ResolvedPlatform, svc: service.ServiceDefinition) -> common.Manifest | None:
    if not platform.spec.network_policies:
        return None
    callers = [s for s in platform.services if svc.name in s.calls]
    ingress: list[common.JsonValue] = []
    if svc.ingress:
        ingress.append({"ports": [{"protocol": "TCP", "port": svc.port}]})
    elif callers:
        ingress.append(
            {
                "from": [_pods(labels.selector_labels(platform.name, c.name)) for c in callers],
                "ports": [{"protocol": "TCP", "port": svc.port}],
            }
        )
    ingress.append({"from": [{"namespaceSelector": {}}], "ports": [{"protocol": "TCP", "port": svc.metrics_port}]})
    egress: list[common.JsonValue] = [_DNS]
    for call in svc.calls:
        if call in platform.names:
            egress.append(
                {
                    "to": [_pods(labels.selector_labels(platform.name, call))],
                    "ports": [{"protocol": "TCP", "port": platform.definition(call).port}],
                }
            )
    if "postgres" in svc.depends_on:
        cluster = labels.postgres_name(platform.name)
        egress.append(
            {
                "to": [_pods({"cnpg.io/cluster": cluster}), _pods({"cnpg.io/poolerName": f"{cluster}-pooler-rw"})],
                "ports": [{"protocol": "TCP", "port": 5432}],
            }
        )
    if "redis" in svc.depends_on:
        egress.append(
            {
                "to": [
                    _pods({"app": f"{labels.redis_name(platform.name)}-leader"}),
                    _pods({"app": f"{labels.redis_name(platform.name)}-follower"}),
                ],
                "ports": [{"protocol": "TCP", "port": 6379}],
            }
        )
    if svc.external_egress:
        egress.append(
            {
                "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}}],
                "ports": [{"protocol": "TCP", "port": 443}],
            }
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": labels.metadata(
            labels.service_name(platform.name, svc.name), platform.namespace, platform.name, svc.name
        ),
        "spec": {
            "podSelector": {"matchLabels": dict(labels.selector_labels(platform.name, svc.name))},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress,
        },
    }


# The data tier: ingress only from the platform's services that depend on it, from the data tier's own
# pods (replication, the cluster bus, the pooler) and from its operator; metrics from any namespace.
# Egress stays open: the instance managers and the pooler talk to the API server.
_ANY_NAMESPACE: common.JsonValue = {"namespaceSelector": {}}


def _operator_pods(match: dict[str, str]) -> common.JsonValue:
    """An operator's pods, in whichever namespace it is installed."""
    return {"namespaceSelector": {}, "podSelector": {"matchLabels": dict(match)}}


def _dependents(platform: ResolvedPlatform, dependency: str) -> list[common.JsonValue]:
    return [
        _pods(labels.selector_labels(platform.name, s.name)) for s in platform.services if dependency in s.depends_on
    ]


def _ingress_policy(
    platform: ResolvedPlatform, name: str, component: str, selector: common.JsonValue, rules: list[common.JsonValue]
) -> common.Manifest:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": labels.metadata(name, platform.namespace, platform.name, component),
        "spec": {"podSelector": selector, "policyTypes": ["Ingress"], "ingress": rules},
    }


def _tcp(*ports: int) -> list[common.JsonValue]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def render_postgres_policy(platform: ResolvedPlatform) -> common.Manifest | None:
    """Postgres instances: 5432 from the dependent services and the cluster's own pods (replicas, join
    jobs, the pooler), 8000 (the instance manager's status) from the CloudNativePG operator, 9187 metrics."""
    if not platform.spec.network_policies:
        return None
    cluster = labels.postgres_name(platform.name)
    own = _pods({"cnpg.io/cluster": cluster})
    operator = _operator_pods({"app.kubernetes.io/name": "cloudnative-pg"})
    return _ingress_policy(
        platform,
        f"{cluster}-instances",
        "postgres",
        {"matchLabels": {"cnpg.io/cluster": cluster, "cnpg.io/podRole": "instance"}},
        [
            {"from": [*_dependents(platform, "postgres"), own], "ports": _tcp(5432)},
            {"from": [operator, own], "ports": _tcp(8000)},
            {"from": [_ANY_NAMESPACE], "ports": _tcp(9187)},
        ],
    )


def render_pooler_policy(platform: ResolvedPlatform) -> common.Manifest | None:
    """PgBouncer: 5432 from the dependent services, 9127 metrics."""
    if not platform.spec.network_policies or not platform.spec.postgres.pooler.enabled:
        return None
    pooler = f"{labels.postgres_name(platform.name)}-pooler-rw"
    return _ingress_policy(
        platform,
        pooler,
        "postgres",
        {"matchLabels": {"cnpg.io/poolerName": pooler}},
        [
            {"from": _dependents(platform, "postgres"), "ports": _tcp(5432)},
            {"from": [_ANY_NAMESPACE], "ports": _tcp(9127)},
        ],
    )


def render_redis_policy(platform: ResolvedPlatform) -> common.Manifest | None:
    """Redis: 6379 from the dependent services, 6379 and the cluster bus 16379 from its own nodes and
    from redis-operator, 9121 exporter metrics."""
    if not platform.spec.network_policies:
        return None
    name = labels.redis_name(platform.name)
    nodes: common.JsonValue = {
        "matchExpressions": [{"key": "app", "operator": "In", "values": [f"{name}-leader", f"{name}-follower"]}]
    }
    operator = _operator_pods({"control-plane": "redis-operator"})
    return _ingress_policy(
        platform,
        name,
        "redis",
        nodes,
        [
            {"from": _dependents(platform, "redis"), "ports": _tcp(6379)},
            {"from": [{"podSelector": nodes}, operator], "ports": _tcp(6379, 16379)},
            {"from": [_ANY_NAMESPACE], "ports": _tcp(9121)},
        ],
    )


def render_namespace_default_deny(platform: ResolvedPlatform) -> common.Manifest | None:
    """Ingress denied to every pod of the namespace that no other policy admits: for the adapters that
    own the platform's namespace (the Pulumi stacks create it; the operator is given one and leaves the
    namespace's policies to its owner)."""
    if not platform.spec.network_policies:
        return None
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": labels.metadata(f"{platform.name}-default-deny", platform.namespace, platform.name, "namespace"),
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }
