"""Shared model building blocks: the base model, durations, quantities, JSON types and the
cross-field rules that are declared once and become both a Python check and a CRD CEL rule.

Used by every other module of ``walletplatform.models``."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated, Any, ClassVar, NamedTuple, TypeAlias

import pydantic
from pydantic import alias_generators
from pydantic_core import PydanticCustomError

JsonValue: TypeAlias = "str | int | float | bool | list[JsonValue] | dict[str, JsonValue] | None"
Manifest: TypeAlias = dict[str, JsonValue]
"""A Kubernetes object as plain JSON data: what the renderer returns and the adapters apply."""

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$"
# At most 6 digits per unit (999999d): a longer number is never a sane duration, and it could not be
# represented (timedelta overflows) or would size unbounded work. Each field also has its own range.
_DURATION = re.compile(r"^(?:(\d{1,6})d)?(?:(\d{1,6})h)?(?:(\d{1,6})m)?(?:(\d{1,7})s)?$")
DURATION_PATTERN = r"^([0-9]{1,6}d)?([0-9]{1,6}h)?([0-9]{1,6}m)?([0-9]{1,7}s)?$"


def parse_duration(value: object) -> timedelta:
    """Parse "90s", "15m", "2h30m" or "14d" (or a number of seconds) into a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration such as 30s, 15m, 2h or 14d")
    if isinstance(value, int | float):
        if not math.isfinite(value) or abs(value) > MAX_DURATION_SECONDS:
            raise ValueError(f"{value!r} is not a duration of at most {MAX_DURATION_SECONDS:g} seconds")
        return timedelta(seconds=float(value))
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if value.strip() and match and any(match.groups()):
            days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
            return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    raise ValueError(f"{value!r} is not a duration such as 30s, 15m, 2h or 14d")


MAX_DURATION_SECONDS = 999999 * 86400.0


def within(low: str, high: str) -> pydantic.AfterValidator:
    """A field's own range of durations, e.g. ``Annotated[Duration, within("10s", "1h")]``."""
    lowest, highest = parse_duration(low), parse_duration(high)

    def check(value: timedelta) -> timedelta:
        if not lowest <= value <= highest:
            raise ValueError(f"{format_duration(value)} is outside {low}..{high}")
        return value

    return pydantic.AfterValidator(check)


def format_duration(value: timedelta) -> str:
    """Format a timedelta the way ``parse_duration`` reads it, e.g. 1d2h or 90s -> 1m30s."""
    total = int(value.total_seconds())
    if total == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


Duration = Annotated[
    timedelta,
    pydantic.BeforeValidator(parse_duration),
    pydantic.PlainSerializer(format_duration, return_type=str),
    pydantic.WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN}),
]
Quantity = Annotated[str, pydantic.StringConstraints(pattern=QUANTITY)]


def _pinned(image: str) -> str:
    """Reject images that are not pinned: no tag and no digest, or the moving tag latest."""
    name = image.split("@", 1)[0].rsplit("/", 1)[-1]
    if "@sha256:" in image:
        return image
    if ":" not in name:
        raise ValueError("the image has no tag or digest; pin it")
    if name.endswith(":latest"):
        raise ValueError("the tag 'latest' is not pinned; use a version tag or a digest")
    return image


PinnedImage = Annotated[
    str,
    pydantic.StringConstraints(pattern=r"^[^\s]+$", max_length=512),
    pydantic.AfterValidator(_pinned),
]


DnsLabel = Annotated[str, pydantic.StringConstraints(pattern=DNS_LABEL, max_length=63)]
# A key of a Secret's data, as the API server accepts it.
SecretKey = Annotated[str, pydantic.StringConstraints(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)]

_QUANTITY_FACTORS = {
    "": 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 1024.0,
    "Mi": 1024.0**2,
    "Gi": 1024.0**3,
    "Ti": 1024.0**4,
}


def parse_quantity(value: str) -> float:
    """Convert a Kubernetes quantity such as "512Mi", "250m" or "2" to a float of base units."""
    match = re.match(QUANTITY, value)
    if not match:
        raise ValueError(f"{value!r} is not a Kubernetes quantity")
    suffix = match.group(2) or ""
    return float(value[: len(value) - len(suffix)]) * _QUANTITY_FACTORS[suffix]


class Ordered(NamedTuple):
    """A cross-field rule ``low <= high`` between two optional fields of one model.

    Declared once on a model; it becomes the model's Python check and the CRD's CEL rule."""

    low: str
    high: str

    def cel(self, model: type[pydantic.BaseModel]) -> dict[str, str]:
        low, high = (model.model_fields[f].alias or f for f in (self.low, self.high))
        return {
            "rule": f"!has(self.{low}) || !has(self.{high}) || self.{low} <= self.{high}",
            "message": f"{high} must be greater than or equal to {low}",
            "fieldPath": f".{high}",
            "reason": "FieldValueInvalid",
        }


def cross_field_error(field: str, message: str, **context: Any) -> PydanticCustomError:
    """An error about one field of a model, found by a rule that looks at several fields.

    ``walletplatform.models.errors`` appends ``field`` to the model's location so the reported
    path names the field itself, e.g. ``spec.services[2].maxReplicas``."""
    return PydanticCustomError("cross_field", message, {"field": field, **context})


class Cel(NamedTuple):
    """A CEL rule for the CRD, declared next to the Python validator that enforces the same rule."""

    rule: str
    message: str
    field_path: str

    def as_schema(self) -> dict[str, str]:
        return {"rule": self.rule, "message": self.message, "fieldPath": self.field_path, "reason": "FieldValueInvalid"}


def _cel_rules(schema: dict[str, Any], model: type[pydantic.BaseModel]) -> None:
    """json_schema_extra hook: the model's declared rules become x-kubernetes-validations."""
    ordered: tuple[Ordered, ...] = getattr(model, "__ordered__", ())
    cel: tuple[Cel, ...] = getattr(model, "__cel__", ())
    rules = [rule.cel(model) for rule in ordered] + [rule.as_schema() for rule in cel]
    if rules:
        schema["x-kubernetes-validations"] = rules


class WalletModel(pydantic.BaseModel):
    """Base of every model: camelCase on the wire, unknown fields rejected, rules declared."""

    model_config = pydantic.ConfigDict(
        alias_generator=alias_generators.to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_enum_values=False,
        json_schema_extra=_cel_rules,
    )
    __ordered__: ClassVar[tuple[Ordered, ...]] = ()
    __cel__: ClassVar[tuple[Cel, ...]] = ()

    @pydantic.model_validator(mode="after")
    def _check_ordered(self) -> WalletModel:
        for rule in self.__ordered__:
            low, high = getattr(self, rule.low), getattr(self, rule.high)
            if low is not None and high is not None and low > high:
                alias_low = type(self).model_fields[rule.low].alias or rule.low
                alias_high = type(self).model_fields[rule.high].alias or rule.high
                raise cross_field_error(
                    alias_high,
                    "{value} is less than {low_name} {low}",
                    value=_show(high),
                    low_name=alias_low,
                    low=_show(low),
                )
        return self

    def to_wire(self) -> dict[str, JsonValue]:
        """The model as the JSON a user would write (camelCase, no unset optionals)."""
        data: dict[str, JsonValue] = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return data


def _show(value: object) -> str:
    return format_duration(value) if isinstance(value, timedelta) else str(value)
