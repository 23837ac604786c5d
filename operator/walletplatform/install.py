"""The operator's own RBAC, derived from what it touches: the kinds the renderer emits (render.KINDS),
our two CRDs, Events, its leader Lease and its admission webhook (configuration and certificate
Secret), and that webhook's ValidatingWebhookConfiguration. No wildcards. Pure: ``walletctl chart`` writes it into the
Helm chart (charts/wallet-operator/templates/rbac.yaml, a test fails when stale) and the integration
tests create exactly these objects and run the operator with the ServiceAccount's token."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from walletplatform import API_GROUP, admission, render
from walletplatform.models import common

# Children: read them back and watch them (drift is repaired from the watch; reconciles read the
# watches' cache), apply (server-side apply is a PATCH, and one that creates the object is also
# authorised as create), prune (DELETE).
CHILD_VERBS: list[common.JsonValue] = ["get", "list", "watch", "create", "patch", "delete"]
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
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create"]},
    ]
    return rules


# Kopf resolves the resources it serves from the CRDs: cluster-scoped, read-only, and the one thing
# the operator reads outside the namespaces it watches.
CRD_RULES: list[common.JsonValue] = [
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["get", "list", "watch"],
    }
]


# The webhook's serving certificate lives in a Secret of the operator's namespace (every replica serves
# the same one) and its CA goes into the ValidatingWebhookConfiguration the chart creates: the operator
# patches that one object, by name.
def webhook_rules(name: str) -> tuple[list[common.JsonValue], list[common.JsonValue]]:
    """(cluster rules, rules in the operator's namespace) of the admission webhook."""
    cluster: list[common.JsonValue] = [
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": ["validatingwebhookconfigurations"],
            "resourceNames": [name],
            "verbs": ["get", "patch"],
        }
    ]
    own: list[common.JsonValue] = [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": [webhook_secret(name)],
            "verbs": ["get", "update"],
        },
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},  # create cannot name its object
        # The Secret is owned by the webhook Service, so that uninstalling the chart collects it.
        {"apiGroups": [""], "resources": ["services"], "resourceNames": [webhook_service(name)], "verbs": ["get"]},
    ]
    return cluster, own


def webhook_secret(name: str) -> str:
    return f"{name}-webhook-cert"


def webhook_service(name: str) -> str:
    return f"{name}-webhook"


def render_webhook_configuration(
    client_config: common.JsonValue, name: str = "wallet-operator", watched: Sequence[str] = ()
) -> common.Manifest:
    """The ValidatingWebhookConfiguration of both kinds: creates and updates go to the operator's
    ``admission.PATH``; it fails closed (what the webhook cannot check is not admitted), and only the
    watched namespaces are checked when the operator watches some."""
    webhook: dict[str, common.JsonValue] = {
        "name": f"validate.{API_GROUP}",
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "failurePolicy": "Fail",
        "matchPolicy": "Equivalent",
        "timeoutSeconds": 10,
        "clientConfig": client_config,
        "rules": [
            {
                "apiGroups": [API_GROUP],
                "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE"],
                "resources": ["walletplatforms", "scalingpolicies"],
                "scope": "Namespaced",
            }
        ],
    }
    if watched:
        webhook["namespaceSelector"] = {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": list[common.JsonValue](watched)}
            ]
        }
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name, "labels": dict(OPERATOR_LABELS)},
        "webhooks": [webhook],
    }


def render_webhook_service(namespace: str, name: str = "wallet-operator") -> common.Manifest:
    """The Service the API server calls: 443 to the replicas' ``webhook`` port (ready replicas only)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": webhook_service(name), "namespace": namespace, "labels": dict(OPERATOR_LABELS)},
        "spec": {
            "selector": {"app.kubernetes.io/name": name},
            "ports": [{"name": "webhook", "port": 443, "targetPort": "webhook"}],
        },
    }


def service_client_config(namespace: str, name: str = "wallet-operator") -> common.JsonValue:
    """In-cluster: the API server calls the webhook Service (port 443) of the operator's namespace."""
    return {"service": {"namespace": namespace, "name": webhook_service(name), "port": 443, "path": admission.PATH}}


def _binding(
    kind: str, name: str, role: str, subject: common.JsonValue, namespace: str | None = None
) -> common.Manifest:
    meta: dict[str, common.JsonValue] = {"name": name, "labels": dict(OPERATOR_LABELS)}
    if namespace is not None:
        meta["namespace"] = namespace
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": subject,
    }


def render_platform_bindings(
    namespace: str, name: str = "wallet-operator", watched: Sequence[str] = ()
) -> list[common.Manifest]:
    """The grant of the platform rules: cluster-wide, or a RoleBinding in each watched namespace (the
    ClusterRole only names the rules then; the permissions stop at those namespaces)."""
    subject: common.JsonValue = [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]
    if not watched:
        return [_binding("ClusterRoleBinding", name, name, subject)]
    # Not named `name`: the Lease's RoleBinding has that name in the operator's own namespace.
    return [_binding("RoleBinding", f"{name}-platforms", name, subject, ns) for ns in watched]


def render_rbac(namespace: str, name: str = "wallet-operator", watched: Sequence[str] = ()) -> list[common.Manifest]:
    """ServiceAccount; the platform rules (a ClusterRole, bound cluster-wide, or in each ``watched``
    namespace only); the CRD read rule and the webhook configuration's patch bound cluster-wide;
    Role(+Binding) for the Lease and the webhook's certificate Secret."""
    meta: dict[str, common.JsonValue] = {"name": name, "namespace": namespace, "labels": dict(OPERATOR_LABELS)}
    cluster_meta: dict[str, common.JsonValue] = {"name": name, "labels": dict(OPERATOR_LABELS)}
    crds_meta: dict[str, common.JsonValue] = {"name": f"{name}-crds", "labels": dict(OPERATOR_LABELS)}
    subject: common.JsonValue = [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]
    webhook_cluster, webhook_own = webhook_rules(name)
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": cluster_meta,
            "rules": render_cluster_rules(),
        },
        *render_platform_bindings(namespace, name, watched),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": crds_meta,
            "rules": CRD_RULES + webhook_cluster,
        },
        _binding("ClusterRoleBinding", f"{name}-crds", f"{name}-crds", subject),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": [
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]},
                *webhook_own,
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


def render_operator_rules(namespace: str) -> common.Manifest:
    """The operator's own alerts (the chart ships them next to its ServiceMonitor): no replica leads,
    reconciles keep failing, Prometheus keeps failing the scaling engine."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "wallet-operator", "namespace": namespace, "labels": dict(OPERATOR_LABELS)},
        "spec": {
            "groups": [
                {
                    "name": "wallet-operator",
                    "rules": [
                        {
                            "alert": "WalletOperatorDown",
                            "expr": "absent(wallet_operator_leader) or sum(wallet_operator_leader) < 1",
                            "for": "5m",
                            "labels": {"severity": "critical"},
                            "annotations": {
                                "summary": "No wallet-operator replica has led for 5 minutes: platforms are not "
                                "reconciled and scaling floors are not decided"
                            },
                        },
                        {
                            "alert": "WalletOperatorReconcileErrors",
                            "expr": "sum by (reason) (increase(wallet_operator_reconcile_errors_total[15m])) > 0",
                            "for": "15m",
                            "labels": {"severity": "warning"},
                            "annotations": {"summary": "Reconciles keep failing ({{ $labels.reason }})"},
                        },
                        {
                            "alert": "WalletOperatorPrometheusTrouble",
                            "expr": "sum by (kind) (increase(wallet_operator_prometheus_trouble_total[15m])) > 0",
                            "for": "30m",
                            "labels": {"severity": "warning"},
                            "annotations": {
                                "summary": "The scaling engine's demand queries keep failing ({{ $labels.kind }}): "
                                "predictive floors are held, then dropped"
                            },
                        },
                    ],
                }
            ]
        },
    }
