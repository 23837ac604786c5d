"""Generate the CustomResourceDefinitions (apiextensions.k8s.io/v1) from the pydantic models.

The models are the one source of truth: descriptions, enums, ranges, defaults and the declared
cross-field rules (as CEL) all come from them. ``walletctl crds`` prints the result; charts/ holds a
committed copy that a test keeps fresh. Pure: no I/O."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pydantic
from pydantic import json_schema

from walletplatform import API_GROUP, API_VERSION
from walletplatform.models import common, resources

_DROP = {"title", "$defs", "discriminator", "examples"}


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    """Inline $refs and turn JSON Schema 2020 into a Kubernetes structural OpenAPI v3 schema."""
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].split("/")[-1]])
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _resolve(merged, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        out[key] = _resolve(value, defs)
    if "anyOf" in out:  # Optional[X] -> X (absence, not null, means unset)
        branches = [b for b in out.pop("anyOf") if b.get("type") != "null"]
        if len(branches) != 1:
            raise ValueError(f"cannot express a union of {len(branches)} types structurally")
        out = {**branches[0], **out}
        if out.get("default", 0) is None:
            del out["default"]
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if "exclusiveMinimum" in out and not isinstance(out["exclusiveMinimum"], bool):
        out["minimum"], out["exclusiveMinimum"] = out["exclusiveMinimum"], True
    if "exclusiveMaximum" in out and not isinstance(out["exclusiveMaximum"], bool):
        out["maximum"], out["exclusiveMaximum"] = out["exclusiveMaximum"], True
    if out.get("additionalProperties") is False or (out.get("additionalProperties") is True):
        del out["additionalProperties"]  # structural schemas prune unknown fields; strict validation rejects them
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("default") == [] or out.get("default") == {}:
        del out["default"]
    return out


class _Schema(json_schema.GenerateJsonSchema):
    """Defaults written the way users write them (durations as 15m, not PT15M)."""

    def encode_default(self, dft: Any) -> Any:
        if isinstance(dft, timedelta):
            return common.format_duration(dft)
        return super().encode_default(dft)


def schema_of(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of one model."""
    raw = model.model_json_schema(by_alias=True, mode="validation", schema_generator=_Schema)
    result: dict[str, Any] = _resolve(raw, raw.get("$defs", {}))
    return result


def _crd(
    kind: str,
    plural: str,
    short: list[str],
    model: type[resources.WalletPlatform] | type[resources.ScalingPolicy],
    columns: list[common.JsonValue],
) -> dict[str, common.JsonValue]:
    spec_model = model.model_fields["spec"].annotation
    status_model = model.model_fields["status"].annotation
    assert isinstance(spec_model, type) and issubclass(spec_model, pydantic.BaseModel)
    status_args = [a for a in getattr(status_model, "__args__", ()) if a is not type(None)]
    spec_schema = schema_of(spec_model)
    status_schema = schema_of(status_args[0])
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{API_GROUP}", "labels": {"app.kubernetes.io/part-of": "wallet-platform"}},
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": list[common.JsonValue](short),
                "categories": ["wallet"],
            },
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": (model.__doc__ or "").strip(),
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


def render_crds() -> list[dict[str, common.JsonValue]]:
    """Both CRDs, WalletPlatform first."""
    age: common.JsonValue = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    return [
        _crd(
            "WalletPlatform",
            "walletplatforms",
            ["wp"],
            resources.WalletPlatform,
            [
                {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
                {
                    "name": "Services",
                    "type": "string",
                    "jsonPath": ".status.servicesReady",
                    "description": "Ready services out of total",
                },
                {"name": "Postgres", "type": "string", "jsonPath": ".status.postgres"},
                {"name": "Redis", "type": "string", "jsonPath": ".status.redis"},
                age,
            ],
        ),
        _crd(
            "ScalingPolicy",
            "scalingpolicies",
            ["wsp"],
            resources.ScalingPolicy,
            [
                {"name": "Platform", "type": "string", "jsonPath": ".spec.platformRef"},
                {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
                {"name": "Valid", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Valid")].status'},
                {"name": "Last decision", "type": "date", "jsonPath": ".status.lastDecision"},
                age,
            ],
        ),
    ]
