"""Bad input is rejected with the field path and the bad value; valid examples parse."""

from __future__ import annotations

import pathlib

import pytest
import yaml
from walletplatform import admission, catalog
from walletplatform.models import errors, resources

from tests.conftest import EXAMPLES, INVALID, POLICIES, load


def expected_path(path: pathlib.Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: ")
    return first.removeprefix("# expect: ")


@pytest.mark.parametrize("path", EXAMPLES + POLICIES, ids=lambda p: p.name)
def test_examples_and_policies_parse(path: pathlib.Path) -> None:
    doc = resources.parse_document(load(path))
    assert doc.metadata.name


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_fixture_names_the_field(path: pathlib.Path, cat: catalog.Catalog) -> None:
    """The model, the catalog and the guardrails: what the webhook, the operator and the CLI check."""
    paths = [p.path for p in admission.check_document(load(path), cat)]
    assert expected_path(path) in paths, paths


CASES = [
    ("spec.services[0].maxReplicas: 1 is less than minReplicas 3", {"name": "transaction", "maxReplicas": 1}),
    (
        "spec.services[0].minReplicas: 0 is invalid: Input should be greater than or equal to 1",
        {"name": "transaction", "minReplicas": 0},
    ),
    ("spec.services[0].name: 'ledger' is not a catalog service", {"name": "ledger"}),
    (
        "spec.services[0].image: 'ghcr.io/x/transaction' is invalid: the image has no tag or digest",
        {"name": "transaction", "image": "ghcr.io/x/transaction"},
    ),
]


@pytest.mark.parametrize(
    ("message", "service"), CASES, ids=["catalog-min-above-max", "min-zero", "unknown", "unpinned"]
)
def test_service_override_errors(message: str, service: dict[str, object], cat: catalog.Catalog) -> None:
    data = {
        "apiVersion": resources.API,
        "kind": "WalletPlatform",
        "metadata": {"name": "p"},
        "spec": {"services": [service]},
    }
    with pytest.raises(errors.SpecError) as caught:
        doc = resources.parse_document(data)
        assert isinstance(doc, resources.WalletPlatform)
        catalog.resolve("p", "default", doc.spec, cat)
    assert any(str(p).startswith(message) for p in caught.value.problems), caught.value.problems


def test_every_problem_is_reported_not_just_the_first() -> None:
    data = {
        "apiVersion": resources.API,
        "kind": "WalletPlatform",
        "metadata": {"name": "p"},
        "spec": {"services": [{"name": "user"}], "redis": {"leaders": 1}, "postgres": {"instances": 0}, "typo": True},
    }
    with pytest.raises(errors.SpecError) as caught:
        resources.parse_document(data)
    assert {p.path for p in caught.value.problems} == {"spec.redis.leaders", "spec.postgres.instances", "spec.typo"}


def test_duplicate_service_is_rejected(cat: catalog.Catalog) -> None:
    doc = resources.parse_document(
        {
            "apiVersion": resources.API,
            "kind": "WalletPlatform",
            "metadata": {"name": "p"},
            "spec": {"services": [{"name": "user"}, {"name": "user"}]},
        }
    )
    assert isinstance(doc, resources.WalletPlatform)
    with pytest.raises(errors.SpecError, match=r"spec.services\[1\].name: 'user' is listed twice"):
        catalog.resolve("p", "default", doc.spec, cat)


@pytest.mark.parametrize("kind", [None, "Deployment", 3])
def test_unknown_kind(kind: object) -> None:
    with pytest.raises(errors.SpecError, match=r"kind: .* is not one of WalletPlatform, ScalingPolicy"):
        resources.parse_document({"kind": kind})


def test_catalog_file_errors_name_the_file() -> None:
    with pytest.raises(errors.SpecError) as caught:
        catalog.parse_catalog({"broken.yaml": {"name": "x", "minReplicas": 1}})
    assert all(p.path.startswith("broken.yaml") for p in caught.value.problems)
    assert "broken.yaml.image" in {p.path for p in caught.value.problems}


@pytest.mark.parametrize(
    ("spec", "path", "message"),
    [
        ({"services": [{"name": "user", "minReplicas": "3"}]}, "spec.services[0].minReplicas", "valid integer"),
        ({"services": [{"name": "user"}], "retainData": "yes"}, "spec.retainData", "valid boolean"),
        ({"services": [{"name": "user"}], "postgres": {"instances": 3.0}}, "spec.postgres.instances", "valid integer"),
        ({"services": [{"name": "user"}], "postgres": {"version": 17}}, "spec.postgres.version", "valid string"),
    ],
)
def test_values_are_not_coerced_as_the_crd_does_not_coerce_them(spec: dict, path: str, message: str) -> None:
    doc = {
        "apiVersion": "wallet.platform.io/v1alpha1",
        "kind": "WalletPlatform",
        "metadata": {"name": "p", "namespace": "n"},
    }
    with pytest.raises(errors.SpecError) as caught:
        resources.parse_document({**doc, "spec": spec})
    problems = {p.path: p.message for p in caught.value.problems}
    assert path in problems and message in problems[path], problems


@pytest.mark.parametrize("start", ["540", "09:00:30", "9:00"])
def test_a_schedule_start_must_be_written_hh_mm(start: str) -> None:
    policy = yaml.safe_load(
        f"""
apiVersion: wallet.platform.io/v1alpha1
kind: ScalingPolicy
metadata: {{name: p, namespace: n}}
spec:
  platformRef: wallet-prod
  services: [transaction]
  schedules: [{{name: evening, start: {start}, duration: 1h, minReplicas: 3}}]
"""
    )
    with pytest.raises(errors.SpecError) as caught:
        resources.parse_document(policy)
    assert any(p.path == "spec.schedules[0].start" for p in caught.value.problems), caught.value.problems


def test_nan_which_json_cannot_carry_is_refused() -> None:
    doc = {
        "apiVersion": "wallet.platform.io/v1alpha1",
        "kind": "WalletPlatform",
        "metadata": {"name": "p", "namespace": "n"},
    }
    with pytest.raises(errors.SpecError) as caught:
        resources.parse_document({**doc, "spec": {"services": [{"name": "user"}], "x": float("nan")}})
    assert [str(p) for p in caught.value.problems] == ["(document): holds NaN or Infinity, which JSON cannot carry"]
