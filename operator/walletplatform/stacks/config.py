"""Stack configuration read into the same pydantic models the CRD is generated from, so a bad config
fails ``pulumi preview`` with the same field-path errors as the API server and ``walletctl validate``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from walletplatform import catalog
from walletplatform.models import errors, resources

Mode = Literal["direct", "operator"]
MODES: tuple[Mode, ...] = ("direct", "operator")


@dataclasses.dataclass(frozen=True)
class StackConfig:
    mode: Mode
    resolved: catalog.ResolvedPlatform
    document: dict[str, Any]


def parse_stack_config(raw: Mapping[str, Any], cat: catalog.Catalog) -> StackConfig:
    """``raw`` holds the config keys ``mode`` and ``platform`` ({name, namespace, spec}); SpecError names
    every problem with its path (``platform.spec.services[2].maxReplicas: ...``)."""
    problems: list[errors.Problem] = []
    mode = raw.get("mode", "direct")
    if mode not in MODES:
        problems.append(errors.Problem(path="mode", message=f"{mode!r} is not one of {', '.join(MODES)}"))
    data = raw.get("platform")
    if not isinstance(data, Mapping):
        raise errors.SpecError(
            [*problems, errors.Problem(path="platform", message="is required (name, namespace, spec)")]
        )
    document = {
        "apiVersion": resources.API,
        "kind": "WalletPlatform",
        "metadata": {"name": data.get("name"), "namespace": data.get("namespace", "default")},
        "spec": data.get("spec"),
    }
    try:
        parsed = resources.parse_document(document)
        assert isinstance(parsed, resources.WalletPlatform)
        resolved = catalog.resolve(parsed.metadata.name, parsed.metadata.namespace, parsed.spec, cat)
    except errors.SpecError as exc:
        found = [errors.Problem(path=f"platform.{p.path}", message=p.message) for p in exc.problems]
        raise errors.SpecError([*problems, *found]) from None
    if problems:
        raise errors.SpecError(problems)
    return StackConfig(mode=mode, resolved=resolved, document=document)
