"""Turn pydantic validation errors into one line per problem, each naming the field path and the bad
value, e.g. ``spec.services[2].maxReplicas: 1 is less than minReplicas 3``.

Used by the CLI, the operator (Degraded condition) and the Pulumi stacks (preview errors)."""

from __future__ import annotations

from collections.abc import Sequence

import pydantic


class Problem(pydantic.BaseModel):
    """One thing wrong with an input document."""

    model_config = pydantic.ConfigDict(frozen=True)
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class SpecError(ValueError):
    """Raised when an input document is invalid; carries every problem found, not just the first."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def format_path(prefix: str, loc: Sequence[int | str]) -> str:
    """Join a pydantic location onto a prefix: ("services", 2, "maxReplicas") -> services[2].maxReplicas."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith(("function-", "tagged-union")):
            continue
        else:
            path = f"{path}.{part}" if path else part
    return path


def problems_from(error: pydantic.ValidationError, prefix: str = "") -> list[Problem]:
    """One Problem per pydantic error, with the field path and the offending value."""
    problems = []
    for item in error.errors(include_url=False):
        loc = list(item["loc"])
        ctx = item.get("ctx") or {}
        if item["type"] == "cross_field":
            loc.append(ctx["field"])
            message = item["msg"]
        elif item["type"] == "extra_forbidden":
            message = "unknown field"
        elif item["type"] == "missing":
            message = "required field is missing"
        else:
            message = item["msg"].removeprefix("Value error, ")
            shown = _short(item.get("input"))
            if shown is not None and item["type"] not in ("model_type", "model_attributes_type"):
                message = f"{shown} is invalid: {message}"
        problems.append(Problem(path=format_path(prefix, loc), message=message))
    return problems


def _short(value: object) -> str | None:
    if isinstance(value, dict | list):
        return None
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
