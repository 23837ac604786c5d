"""The CRDs are generated from the models, the committed copy is fresh, and the schemas accept the
examples and reject the invalid fixtures (JSON-schema here; the real API server in integration)."""

from __future__ import annotations

import pathlib
from typing import Any

import jsonschema
import pytest
import yaml
from walletplatform import crd
from walletplatform.cli import core
from walletplatform.models import chart_values

from tests.conftest import EXAMPLES, INVALID, POLICIES, ROOT, load, rejected_by

COMMITTED = ROOT / "charts" / "wallet-operator" / "crds" / "crds.yaml"


def schema_for(kind: str) -> dict[str, Any]:
    for definition in crd.render_crds():
        if definition["spec"]["names"]["kind"] == kind:  # type: ignore[index,call-overload]
            schema: dict[str, Any] = definition["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[index,call-overload]
            return schema
    raise KeyError(kind)


def to_jsonschema(node: Any) -> Any:
    """OpenAPI v3.0 -> JSON Schema: boolean exclusive bounds and no unknown fields, like strict validation."""
    if isinstance(node, list):
        return [to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_jsonschema(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
    for bound, key in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if out.get(key) is True:
            out[key] = out.pop(bound)
    if out.get("type") == "object" and "properties" in out:
        out["additionalProperties"] = False
    return out


def test_committed_chart_files_are_fresh() -> None:
    for relative, text in core.render_chart_files().items():
        path = core.CHART_DIR / relative
        assert path.read_text() == text, f"{path} is stale: run walletctl chart"
    assert COMMITTED == core.CHART_DIR / "crds" / "crds.yaml"


def test_structural_no_refs_or_nulls() -> None:
    text = yaml.safe_dump_all(crd.render_crds())
    for forbidden in ("$ref", "anyOf", "type: 'null'", "additionalProperties: false", "const:"):
        assert forbidden not in text


def test_cel_rules_come_from_declared_rules() -> None:
    spec = schema_for("WalletPlatform")["properties"]["spec"]
    service_rules = spec["properties"]["services"]["items"]["x-kubernetes-validations"]
    assert service_rules == [
        {
            "rule": "!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
            "message": "maxReplicas must be greater than or equal to minReplicas",
            "fieldPath": ".maxReplicas",
            "reason": "FieldValueInvalid",
        }
    ]
    pg_rules = spec["properties"]["postgres"]["x-kubernetes-validations"]
    assert pg_rules[0]["fieldPath"] == ".synchronousReplicas"


@pytest.mark.parametrize("path", EXAMPLES + POLICIES, ids=lambda p: p.name)
def test_schema_accepts_examples(path: pathlib.Path) -> None:
    doc = load(path)
    jsonschema.validate(doc, to_jsonschema(schema_for(str(doc["kind"]))))


SCHEMA_ONLY_INVALID = [p for p in INVALID if rejected_by(p) == "schema"]


@pytest.mark.parametrize("path", SCHEMA_ONLY_INVALID, ids=lambda p: p.stem)
def test_schema_rejects_invalid(path: pathlib.Path) -> None:
    """Fixtures the OpenAPI schema alone can reject; CEL-only ones are checked on the real API server."""
    doc = load(path)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, to_jsonschema(schema_for(str(doc["kind"]))))


def test_the_charts_own_values_satisfy_its_values_model() -> None:
    values = yaml.safe_load((core.CHART_DIR / "values.yaml").read_text())
    parsed = chart_values.ChartValues.model_validate(values)
    assert parsed.replicas == 2 and parsed.pod_disruption_budget.enabled
