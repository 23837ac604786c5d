"""Shared fixtures: the real catalog and the example platforms, parsed once."""

from __future__ import annotations

import pathlib

import pytest
import yaml
from walletplatform import catalog
from walletplatform.models import resources

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEV_EXAMPLE = ROOT / "examples" / "walletplatform.yaml"
PROD_EXAMPLE = ROOT / "examples" / "walletplatform-prod.yaml"
EXAMPLES = [DEV_EXAMPLE, PROD_EXAMPLE]
POLICIES = sorted(p for p in (ROOT / "policies").glob("*/*.yaml") if p.parent.name != "pack")
INVALID = sorted((ROOT / "tests" / "fixtures" / "invalid").glob("*.yaml"))


@pytest.fixture(scope="session")
def cat() -> catalog.Catalog:
    return catalog.load_catalog()


def load(path: pathlib.Path) -> dict[str, object]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def resolve_file(path: pathlib.Path, cat: catalog.Catalog) -> catalog.ResolvedPlatform:
    doc = resources.parse_document(load(path))
    assert isinstance(doc, resources.WalletPlatform)
    return catalog.resolve(doc.metadata.name, doc.metadata.namespace, doc.spec, cat)


def rejected_by(path: pathlib.Path) -> str:
    """Which layer rejects an invalid fixture: schema, cel or operator (from its second line)."""
    line = path.read_text().splitlines()[1]
    assert line.startswith("# rejected-by: ")
    return line.removeprefix("# rejected-by: ").split()[0]
