"""The operator's own RBAC, derived from what it touches: the kinds the renderer emits (render.KINDS),
our two CRDs, Events and its leader Lease. No wildcards. Pure: ``walletctl chart`` writes it into the
Helm chart (charts/wallet-operator/templates/rbac.yaml, a test fails when stale) and the integration
tests create exactly these objects and run the operator with the ServiceAccount's token."""

from __future__ import annotations

from collections import defaultdict

from walletplatform import API_GROUP, render
from walletplatform.models import common

# Children: read them back, apply (server-side apply is a PATCH, and one that creates the object is
# also authorised as create), prune (DELETE). No watch: the periodic resync lists.
CHILD_VERBS: list[common.JsonValue] = ["get", "list", "create", "patch", "delete"]
PLURALS = {
    "ConfigMap": "configmaps",
    "Cluster": "clusters",
    "Pooler": "poolers",
    "RedisCluster": "redisclusters",
    "ServiceAccount": "serviceaccounts",
    "Service": "services",
    "Deployment": "deployments",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "NetworkPolicy": "networkpolicies",
    "VerticalPodAutoscaler": "verticalpodautoscalers",
    "ServiceMonitor": "servicemonitors",
    "PodMonitor": "podmonitors",
    "PrometheusRule": "prometheusrules",
    "Secret": "secrets",
}
OPERATOR_LABELS = {"app.kubernetes.io/name": "wallet-operator", "app.kubernetes.io/part-of": "wallet-platform"}


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def render_cluster_rules() -> list[common.JsonValue]:
    """ClusterRole rules: one rule per API group, resources sorted, verbs exact."""
    by_group: dict[str, list[str]] = defaultdict(list)
    for api_version, kind in render.KINDS:
        by_group[_group(api_version)].append(PLURALS[kind])
    rules: list[common.JsonValue] = [
        {"apiGroups": [group], "resources": list[common.JsonValue](sorted(resources)), "verbs": CHILD_VERBS}
        for group, resources in sorted(by_group.items())
    ]
    rules += [
        # Kopf watches the platforms and keeps its bookkeeping in their annotations (patch).
        {"apiGroups": [API_GROUP], "resources": ["walletplatforms"], "verbs": ["get", "list", "watch", "patch"]},
        {"apiGroups": [API_GROUP], "resources": ["scalingpolicies"], "verbs": ["get", "list", "watch"]},
        {
            "apiGroups": [API_GROUP],
            "resources": ["walletplatforms/status", "scalingpolicies/status"],
            "verbs": ["get", "patch"],
        },
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
        # Kopf resolves the resources it serves from the CRDs: read-only.
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["get", "list", "watch"],
        },
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create"]},
    ]
    return rules


def render_rbac(namespace: str, name: str = "wallet-operator") -> list[common.Manifest]:
    """ServiceAccount, ClusterRole(+Binding) for the platforms' namespaces, Role(+Binding) for the Lease."""
    meta: dict[str, common.JsonValue] = {"name": name, "namespace": namespace, "labels": dict(OPERATOR_LABELS)}
    cluster_meta: dict[str, common.JsonValue] = {"name": name, "labels": dict(OPERATOR_LABELS)}
    subject: common.JsonValue = [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": cluster_meta,
            "rules": render_cluster_rules(),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": cluster_meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": subject,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": [
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": subject,
        },
    ]
