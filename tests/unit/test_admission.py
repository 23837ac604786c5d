"""The admission webhook's pure core: an AdmissionReview in, the answer out, with the same lines as
``walletctl validate``; and the certificate the operator issues for it."""

from __future__ import annotations

import datetime
import pathlib
from typing import Any

import pytest
from cryptography import x509
from walletplatform import admission, catalog, install
from walletplatform.cli import main as cli_main
from walletplatform.controller import webhook

from tests.conftest import EXAMPLES, INVALID, POLICIES, load


def review(obj: dict[str, Any], operation: str = "CREATE", old: dict[str, Any] | None = None) -> dict[str, Any]:
    meta = obj.get("metadata", {})
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "3f1c",
            "kind": {"group": "wallet.platform.io", "version": "v1alpha1", "kind": obj.get("kind")},
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "operation": operation,
            "object": obj,
            "oldObject": old,
        },
    }


def as_stored(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as the API server sends it: server-set metadata and a status."""
    meta = {**obj["metadata"], "uid": "a-b", "resourceVersion": "7", "generation": 1, "managedFields": []}
    return {**obj, "metadata": meta, "status": {"conditions": []}}


@pytest.mark.parametrize("path", EXAMPLES + POLICIES, ids=lambda p: p.name)
def test_examples_and_policies_are_admitted(path: pathlib.Path, cat: catalog.Catalog) -> None:
    answer = admission.review(review(as_stored(load(path))), cat)
    assert answer["response"] == {"uid": "3f1c", "allowed": True}


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_fixtures_are_refused_with_the_lines_walletctl_validate_prints(
    path: pathlib.Path, cat: catalog.Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = admission.review(review(as_stored(load(path))), cat)["response"]
    assert answer["allowed"] is False and answer["uid"] == "3f1c"
    assert answer["status"]["code"] == 422
    assert cli_main.main(["validate", "-f", str(path)]) == 2
    assert answer["status"]["message"].splitlines() == capsys.readouterr().err.splitlines()
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    assert any(line.startswith(f"{expected}:") for line in answer["status"]["message"].splitlines())


def test_an_update_that_keeps_the_spec_is_admitted_even_when_the_spec_is_invalid(cat: catalog.Catalog) -> None:
    """Finalizers and annotations must stay writable on an object a stricter release would refuse:
    otherwise it could not be deleted."""
    bad = as_stored(load(next(p for p in INVALID if p.stem == "unknown-service")))
    finalized = {**bad, "metadata": {**bad["metadata"], "finalizers": []}}
    assert admission.review(review(finalized, "UPDATE", bad), cat)["response"]["allowed"] is True
    changed = {**bad, "spec": {**bad["spec"], "vpa": True}}
    assert admission.review(review(changed, "UPDATE", bad), cat)["response"]["allowed"] is False


def test_a_delete_is_never_refused(cat: catalog.Catalog) -> None:
    bad = load(next(p for p in INVALID if p.stem == "unknown-service"))
    assert admission.review(review(bad, "DELETE"), cat)["response"]["allowed"] is True


@pytest.mark.parametrize("body", [None, [], {}, {"request": {"uid": 3}}, {"request": "x"}])
def test_a_malformed_review_is_refused_without_an_exception(body: object, cat: catalog.Catalog) -> None:
    answer = admission.review(body, cat)["response"]
    assert answer["allowed"] is False
    assert answer["status"]["message"].startswith("request: is not an admission.k8s.io/v1 AdmissionReview")


def test_a_long_answer_is_cut_and_counts_the_problems(cat: catalog.Catalog) -> None:
    obj = load(next(p for p in INVALID if p.stem == "unknown-service"))
    obj["spec"] = {"services": [{"name": f"ledger-{i:02d}-{'x' * 30}"} for i in range(32)]}
    message = admission.review(review(obj), cat)["response"]["status"]["message"]
    assert len(message) <= admission.MESSAGE_LIMIT and message.endswith("(32 problems)")


def test_the_configuration_fails_closed_and_selects_the_watched_namespaces() -> None:
    config = install.render_webhook_configuration(install.service_client_config("wallet-system"), watched=("a", "b"))
    (hook,) = config["webhooks"]  # type: ignore[misc]
    assert hook["failurePolicy"] == "Fail" and hook["sideEffects"] == "None"
    assert hook["clientConfig"]["service"] == {
        "namespace": "wallet-system",
        "name": "wallet-operator-webhook",
        "port": 443,
        "path": admission.PATH,
    }
    assert hook["rules"][0]["operations"] == ["CREATE", "UPDATE"]
    assert hook["namespaceSelector"]["matchExpressions"][0]["values"] == ["a", "b"]
    assert "namespaceSelector" not in install.render_webhook_configuration({"url": "https://x"})["webhooks"][0]  # type: ignore[index, call-overload]


NOW = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
HOSTS = ["wallet-operator-webhook.wallet-system.svc", "wallet-operator-webhook.wallet-system.svc.cluster.local"]


def test_a_fresh_certificate_serves_its_hosts_and_is_signed_by_its_ca() -> None:
    cert = webhook.issue(HOSTS, NOW)
    assert webhook.needs(cert, HOSTS, NOW) == ""
    ca, leaf = x509.load_pem_x509_certificate(cert.ca_crt), x509.load_pem_x509_certificate(cert.tls_crt)
    leaf.verify_directly_issued_by(ca)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == HOSTS
    ip = webhook.issue(["127.0.0.1"], NOW)
    ip_names = x509.load_pem_x509_certificate(ip.tls_crt).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert [str(a) for a in ip_names.value.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert webhook.Certificate.from_secret({"data": cert.secret_data()}) == cert


def test_the_leaf_is_renewed_under_the_same_ca_a_month_before_it_expires() -> None:
    cert = webhook.issue(HOSTS, NOW)
    later = NOW + datetime.timedelta(days=webhook.LEAF_DAYS) - webhook.RENEW_BEFORE + datetime.timedelta(hours=1)
    assert webhook.needs(cert, HOSTS, later - datetime.timedelta(days=2)) == ""
    assert webhook.needs(cert, HOSTS, later) == "leaf"
    renewed = webhook.issue(HOSTS, later, cert)
    assert renewed.ca_crt == cert.ca_crt and renewed.tls_crt != cert.tls_crt
    x509.load_pem_x509_certificate(renewed.tls_crt).verify_directly_issued_by(
        x509.load_pem_x509_certificate(cert.ca_crt)
    )
    assert webhook.needs(renewed, HOSTS, later) == ""
    assert webhook.needs(cert, ["another.wallet-system.svc"], NOW) == "leaf"  # the Service was renamed


def test_a_missing_broken_or_expiring_ca_gets_a_new_one() -> None:
    cert = webhook.issue(HOSTS, NOW)
    assert webhook.needs(None, HOSTS, NOW) == "ca"
    assert webhook.needs(webhook.Certificate(b"x", b"x", b"x", b"x"), HOSTS, NOW) == "ca"
    assert webhook.needs(cert, HOSTS, NOW + datetime.timedelta(days=webhook.CA_DAYS - 40)) == "ca"
    assert webhook.Certificate.from_secret({"data": {"ca.crt": "!!"}}) is None
