"""Secret values the renderer never writes: the keys a rendered Secret names in its generated-keys
annotation get a random value once, from the adapter that applies the Secret, and keep it afterwards.

Both adapters call ``fill``: the operator with the live Secret (so every pass re-applies the value it
read, and server-side apply never drops a key it owns), the Pulumi stacks with none (and ignore later
changes of the data, so the value of the first ``pulumi up`` stays)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from typing import Any

from walletplatform.models import common
from walletplatform.render import labels


def generated_keys(obj: common.Manifest) -> tuple[str, ...]:
    """The keys ``obj`` asks its applier to generate (none for any other object)."""
    if obj.get("kind") != "Secret":
        return ()
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    value = annotations.get(labels.GENERATED_KEYS_ANNOTATION) if isinstance(annotations, dict) else None
    return tuple(key.strip() for key in value.split(",") if key.strip()) if isinstance(value, str) else ()


def random_value() -> str:
    """32 random bytes as URL-safe text: safe in redis.conf, a connection string and an env var."""
    return secrets.token_urlsafe(32)


def fill(
    obj: common.Manifest, live: dict[str, Any] | None, generate: Callable[[], str] = random_value
) -> common.Manifest:
    """``obj`` with ``data`` holding every generated key: the live Secret's value where it has one
    (base64, as the API returns it), else a new one. Objects without generated keys come back as is."""
    keys = generated_keys(obj)
    if not keys:
        return obj
    live_data = (live or {}).get("data") or {}
    data: dict[str, common.JsonValue] = {}
    for key in keys:
        kept = live_data.get(key)
        data[key] = kept if isinstance(kept, str) and kept else base64.b64encode(generate().encode()).decode()
    return {**obj, "data": data}
