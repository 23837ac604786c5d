"""Pure comparison of a rendered object with the live one, and the ownership the operator adds.

The operator calls ``decide_write`` for every rendered object and only writes when it says so, which
is what makes a no-op reconcile send zero write requests. Two checks, both needed:

* a hash of the rendered object is kept in an annotation on the child, so a spec change (including
  a field the renderer stopped emitting, which a subset check cannot see) is always written;
* every rendered field must be present in the live object with the same value, so a child deleted
  or edited by hand (e.g. ``kubectl set image``) is restored.

Fields other managers added (an HPA's status, a user's extra label) are not compared: they are not
ours and are left alone."""

from __future__ import annotations

import hashlib
import json
from typing import Any, NamedTuple

from walletplatform import API_GROUP, API_VERSION
from walletplatform.models import common
from walletplatform.render import labels

HASH_ANNOTATION = f"{API_GROUP}/applied-hash"
QUANTITY_KEYS = frozenset({"cpu", "memory", "storage", "ephemeral-storage", "size"})


class Owner(NamedTuple):
    """The WalletPlatform that owns the children."""

    name: str
    uid: str

    def reference(self) -> dict[str, common.JsonValue]:
        return {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": "WalletPlatform",
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


class Verdict(NamedTuple):
    write: bool
    reason: str


def render_hash(obj: common.Manifest) -> str:
    """A short stable digest of a rendered object (before ownership is added)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def retained(obj: common.Manifest) -> bool:
    """Data-tier objects the renderer marked to survive the platform's deletion."""
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    return isinstance(annotations, dict) and annotations.get(labels.RETAIN_ANNOTATION) == "true"


def render_owned(obj: common.Manifest, owner: Owner) -> common.Manifest:
    """The object as the operator applies it: hash annotation, and an ownerReference unless retained.

    Retained objects carry no ownerReference, so the garbage collector leaves them (and the PVCs their
    operators own) in place when the platform is deleted."""
    meta = obj["metadata"]
    assert isinstance(meta, dict)
    annotations = meta.get("annotations")
    new_meta: dict[str, common.JsonValue] = {
        **meta,
        "annotations": {**(annotations if isinstance(annotations, dict) else {}), HASH_ANNOTATION: render_hash(obj)},
    }
    if not retained(obj):
        new_meta["ownerReferences"] = [owner.reference()]
    return {**obj, "metadata": new_meta}


def _same_scalar(key: str, want: object, have: object) -> bool:
    if want == have:
        return True
    if key in QUANTITY_KEYS and isinstance(want, str | int | float) and isinstance(have, str | int | float):
        try:
            return common.parse_quantity(str(want)) == common.parse_quantity(str(have))
        except ValueError:
            return False
    return False


def find_difference(want: Any, have: Any, path: str = "", key: str = "") -> str | None:
    """The first path where ``have`` lacks or differs from a field of ``want``; None when ``want`` is a subset.

    Lists are compared element by element and must have the same length: every list the renderer
    emits (containers, ports, env, rules) is wholly ours."""
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return path or "."
        for k, v in want.items():
            found = find_difference(v, have.get(k), f"{path}.{k}", k)
            if found is not None:
                return found
        return None
    if isinstance(want, list):
        if not isinstance(have, list) or len(want) != len(have):
            return path
        for i, (w, h) in enumerate(zip(want, have, strict=True)):
            found = find_difference(w, h, f"{path}[{i}]", key)
            if found is not None:
                return found
        return None
    return None if _same_scalar(key, want, have) else path


def decide_write(desired: common.Manifest, live: dict[str, Any] | None) -> Verdict:
    """Whether the owned object ``desired`` (from ``render_owned``) must be applied over ``live``."""
    if live is None:
        return Verdict(True, "missing")
    want_meta = desired["metadata"]
    assert isinstance(want_meta, dict)
    want_hash = want_meta["annotations"][HASH_ANNOTATION]  # type: ignore[index,call-overload]
    have_hash = ((live.get("metadata") or {}).get("annotations") or {}).get(HASH_ANNOTATION)
    if have_hash != want_hash:
        return Verdict(True, "spec changed")
    found = find_difference(desired, live)
    if found is not None:
        return Verdict(True, f"drifted at {found}")
    return Verdict(False, "up to date")


def field_managers(live: dict[str, Any], *path: str) -> set[str]:
    """The field managers whose ``managedFields`` entry owns the field at ``path`` of ``live``
    (e.g. ``"spec", "minReplicas"``): server-side apply's record of who set it."""
    owners: set[str] = set()
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        fields: Any = entry.get("fieldsV1") or {}
        for key in path:
            fields = fields.get(f"f:{key}") if isinstance(fields, dict) else None
        if fields is not None and entry.get("manager"):
            owners.add(entry["manager"])
    return owners


def object_key(obj: common.Manifest | dict[str, Any]) -> tuple[str, str, str]:
    """(apiVersion, kind, name): how the operator matches rendered and live children."""
    meta = obj["metadata"]
    assert isinstance(meta, dict)
    return str(obj["apiVersion"]), str(obj["kind"]), str(meta["name"])


def select_prunable(
    live: list[dict[str, Any]], desired: set[tuple[str, str, str]], owner: Owner
) -> list[dict[str, Any]]:
    """Live children of ``owner`` (by label and ownerReference uid) that the spec no longer renders.

    Objects without our ownerReference (retained data, things a user labelled by hand) are never pruned."""
    result = []
    for obj in live:
        refs = (obj.get("metadata") or {}).get("ownerReferences") or []
        if not any(ref.get("uid") == owner.uid for ref in refs):
            continue
        if object_key(obj) not in desired:
            result.append(obj)
    return result


def render_merge_patch(old: Any, new: Any) -> Any:
    """The RFC 7386 merge patch that turns ``old`` into ``new`` (keys that disappear become null)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            patch[key] = render_merge_patch(old[key], value)
    return patch
