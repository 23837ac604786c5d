"""The label set every rendered object carries, written once, and the names of rendered objects.

Pruning and ownership in the operator select by these labels, never by guessing names."""

from __future__ import annotations

from walletplatform.models import common

PART_OF = "wallet-platform"
MANAGED_BY = "wallet-operator"
PLATFORM_LABEL = "wallet.platform.io/platform"
RETAIN_ANNOTATION = "wallet.platform.io/retain-on-delete"
# On a rendered Secret: the comma-separated keys whose random values the applying adapter generates
# once (see walletplatform.secrets); the renderer never writes a secret value.
GENERATED_KEYS_ANNOTATION = "wallet.platform.io/generated-keys"


def platform_labels(platform: str, component: str) -> dict[str, str]:
    """Labels on every object of one platform component (a service, postgres, redis, monitoring)."""
    return {
        "app.kubernetes.io/name": component,
        "app.kubernetes.io/instance": platform,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        PLATFORM_LABEL: platform,
    }


def selector_labels(platform: str, component: str) -> dict[str, str]:
    """The immutable subset used in selectors."""
    return {"app.kubernetes.io/instance": platform, "app.kubernetes.io/name": component}


def metadata(name: str, namespace: str, platform: str, component: str) -> dict[str, common.JsonValue]:
    """Standard metadata block."""
    return {"name": name, "namespace": namespace, "labels": dict(platform_labels(platform, component))}


def data_metadata(
    name: str, namespace: str, platform: str, component: str, retain: bool
) -> dict[str, common.JsonValue]:
    """Metadata of a data-tier object; ``retain`` marks it to survive the platform's deletion."""
    meta = metadata(name, namespace, platform, component)
    if retain:
        meta["annotations"] = {RETAIN_ANNOTATION: "true"}
    return meta


def service_name(platform: str, service: str) -> str:
    return f"{platform}-{service}"


def postgres_name(platform: str) -> str:
    return f"{platform}-pg"


def redis_name(platform: str) -> str:
    return f"{platform}-redis"
