"""The two custom resources as whole documents (apiVersion, kind, metadata, spec, status), and the
one entry point that parses a document of either kind into a model or a list of Problems."""

from __future__ import annotations

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


def parse_document(data: object) -> Document:
    """Parse one YAML/JSON document into a model; raise SpecError listing every problem."""
    if not isinstance(data, dict):
        raise errors.SpecError([errors.Problem(path="(document)", message="is not a mapping")])
    kind = data.get("kind")
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise errors.SpecError([errors.Problem(path="kind", message=f"{kind!r} is not one of {', '.join(KINDS)}")])
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise errors.SpecError(errors.problems_from(exc)) from None


def parse_spec(model: type[SpecT], data: object, prefix: str = "spec") -> SpecT:
    """Parse a bare spec (as the Pulumi config or a Kopf handler has it); SpecError on problems."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise errors.SpecError(errors.problems_from(exc, prefix)) from None
