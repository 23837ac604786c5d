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
