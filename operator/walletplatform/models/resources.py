"""The two custom resources as whole documents (apiVersion, kind, metadata, spec, status), and the
one entry point that parses a document of either kind into a model or a list of Problems."""

from __future__ import annotations

import json
from typing import Annotated, Generic, Literal, TypeVar

import pydantic
from pydantic import Field

from walletplatform import API_GROUP, API_VERSION
from walletplatform.models import common, errors, platform, scaling

API = f"{API_GROUP}/{API_VERSION}"


class ObjectMeta(pydantic.BaseModel):
    """The part of metadata the core reads; everything else the API server adds is ignored."""

    model_config = pydantic.ConfigDict(extra="ignore", frozen=True)
    name: Annotated[str, Field(pattern=common.DNS_LABEL, max_length=40)]
    namespace: str = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    uid: str | None = None
    generation: int | None = None


SpecT = TypeVar("SpecT", bound=common.WalletModel)
ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)
StatusT = TypeVar("StatusT", bound=common.WalletModel)


class Resource(pydantic.BaseModel, Generic[SpecT, StatusT]):
    """A namespaced custom resource."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    api_version: Literal["wallet.platform.io/v1alpha1"] = Field(alias="apiVersion")
    metadata: ObjectMeta
    spec: SpecT
    status: StatusT | None = None


class WalletPlatform(Resource[platform.WalletPlatformSpec, platform.WalletPlatformStatus]):
    """A whole wallet platform in one resource."""

    kind: Literal["WalletPlatform"]


class ScalingPolicy(Resource[scaling.ScalingPolicySpec, scaling.ScalingPolicyStatus]):
    """Declarative scaling for services of one WalletPlatform."""

    kind: Literal["ScalingPolicy"]


Document = WalletPlatform | ScalingPolicy
KINDS: dict[str, type[WalletPlatform] | type[ScalingPolicy]] = {
    "WalletPlatform": WalletPlatform,
    "ScalingPolicy": ScalingPolicy,
}


def _strict(model: type[ModelT], data: object, prefix: str | None = None) -> ModelT:
    """Validate as the API server does: on the JSON the object becomes (as kubectl sends it), in strict
    mode, so "3" is not an int and "yes" not a bool; NaN and Infinity, which JSON cannot carry, are
    refused. The models' own validators (durations, quantities, enums by value) work on that JSON."""
    try:
        text = json.dumps(data, allow_nan=False, default=str)
    except ValueError:
        raise errors.SpecError(
            [errors.Problem(path=prefix or "(document)", message="holds NaN or Infinity, which JSON cannot carry")]
        ) from None
    try:
        return model.model_validate_json(text, strict=True)
    except pydantic.ValidationError as exc:
        raise errors.SpecError(errors.problems_from(exc, prefix) if prefix else errors.problems_from(exc)) from None


def parse_document(data: object) -> Document:
    """Parse one YAML/JSON document into a model; raise SpecError listing every problem."""
    if not isinstance(data, dict):
        raise errors.SpecError([errors.Problem(path="(document)", message="is not a mapping")])
    kind = data.get("kind")
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise errors.SpecError([errors.Problem(path="kind", message=f"{kind!r} is not one of {', '.join(KINDS)}")])
    return _strict(model, data)


def parse_spec(model: type[SpecT], data: object, prefix: str = "spec") -> SpecT:
    """Parse a bare spec (as the Pulumi config or a Kopf handler has it); SpecError on problems."""
    return _strict(model, data, prefix)
