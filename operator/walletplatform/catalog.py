"""The service catalog (services/*.yaml) and the one place where a platform's per-service overrides
are merged onto catalog defaults.

``parse_catalog`` and ``resolve`` are pure; ``load_catalog`` reads the folder. Called by the CLI, the
operator, the Pulumi stacks and the scaling engine."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping

import pydantic
import yaml

from walletplatform.models import errors, platform, service

DEFAULT_DIR = pathlib.Path(__file__).resolve().parents[2] / "services"

Catalog = Mapping[str, service.ServiceDefinition]


def parse_catalog(documents: Mapping[str, object]) -> dict[str, service.ServiceDefinition]:
    """Validate catalog documents keyed by file name; SpecError names the file and field."""
    catalog: dict[str, service.ServiceDefinition] = {}
    problems: list[errors.Problem] = []
    for source, data in sorted(documents.items()):
        try:
            definition = service.ServiceDefinition.model_validate(data)
        except pydantic.ValidationError as exc:
            problems += errors.problems_from(exc, prefix=source)
            continue
        if definition.name in catalog:
            problems.append(errors.Problem(path=f"{source}.name", message=f"{definition.name!r} is defined twice"))
        catalog[definition.name] = definition
    if problems:
        raise errors.SpecError(problems)
    return catalog


def load_catalog(directory: pathlib.Path = DEFAULT_DIR) -> dict[str, service.ServiceDefinition]:
    """Read every *.yaml file of the catalog folder."""
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise errors.SpecError([errors.Problem(path=str(directory), message="no service definitions found")])
    return parse_catalog({path.name: yaml.safe_load(path.read_text()) for path in files})


class ResolvedPlatform(pydantic.BaseModel):
    """A platform spec with every service resolved to its effective definition."""

    model_config = pydantic.ConfigDict(frozen=True)
    name: str
    namespace: str
    spec: platform.WalletPlatformSpec
    services: tuple[service.ServiceDefinition, ...]
    vpa: Mapping[str, bool]

    def definition(self, name: str) -> service.ServiceDefinition:
        """The effective definition of one service of this platform."""
        for definition in self.services:
            if definition.name == name:
                return definition
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.services)


_OVERRIDABLE = ("image", "min_replicas", "max_replicas", "resources", "targets", "behavior", "extra_metrics")


def merge_service(base: service.ServiceDefinition, override: platform.ServiceOverride) -> service.ServiceDefinition:
    """Catalog defaults with the platform's overrides on top; env is appended (override wins by name)."""
    data = base.model_dump(by_alias=False)
    for field in _OVERRIDABLE:
        value = getattr(override, field)
        if value is not None:
            data[field] = value.model_dump(by_alias=False) if isinstance(value, pydantic.BaseModel) else value
    if override.env:
        names = {e.name for e in override.env}
        data["env"] = [e for e in data["env"] if e["name"] not in names] + [
            e.model_dump(by_alias=False) for e in override.env
        ]
    return service.ServiceDefinition.model_validate(data)


def resolve(
    name: str, namespace: str, spec: platform.WalletPlatformSpec, catalog: Catalog, prefix: str = "spec"
) -> ResolvedPlatform:
    """Check the spec against the catalog and merge overrides; SpecError lists every problem."""
    problems: list[errors.Problem] = []
    resolved: list[service.ServiceDefinition] = []
    seen: set[str] = set()
    for index, override in enumerate(spec.services):
        path = f"{prefix}.services[{index}]"
        if override.name not in catalog:
            problems.append(
                errors.Problem(
                    path=f"{path}.name",
                    message=f"{override.name!r} is not a catalog service (known: {', '.join(sorted(catalog))})",
                )
            )
            continue
        if override.name in seen:
            problems.append(errors.Problem(path=f"{path}.name", message=f"{override.name!r} is listed twice"))
            continue
        seen.add(override.name)
        try:
            resolved.append(merge_service(catalog[override.name], override))
        except pydantic.ValidationError as exc:
            problems += errors.problems_from(exc, prefix=path)
    if problems:
        raise errors.SpecError(problems)
    vpa = {o.name: (o.vpa if o.vpa is not None else spec.vpa) for o in spec.services}
    return ResolvedPlatform(name=name, namespace=namespace, spec=spec, services=tuple(resolved), vpa=vpa)
