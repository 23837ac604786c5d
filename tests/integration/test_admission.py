"""The operator's validating webhook against the real kube-apiserver: the API server itself refuses
what the operator would refuse (the catalog, the guardrails, and everything the CRD says), with the
lines ``walletctl validate`` prints; the operator makes the certificate, keeps it in its Secret and
puts the CA in the configuration with nothing but the chart's RBAC; it fails closed.

The configuration selects this module's namespace only (the other modules' operators report invalid
specs in status, which this webhook would otherwise refuse first) and is deleted afterwards."""

from __future__ import annotations

import base64
import pathlib
import ssl
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from walletplatform import admission, install
from walletplatform.cli import main as cli_main
from walletplatform.clients import kube
from walletplatform.devenv import operator as operator_env
from walletplatform.devenv import processes

from tests.conftest import EXAMPLES, INVALID, POLICIES, load, rejected_by
from tests.integration.conftest import OPERATOR_ENV, Cluster

CONFIG = ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "wallet-operator")
SECRET = install.webhook_secret("wallet-operator")


class Webhook:
    def __init__(self, cluster: Cluster, kubeconfig: pathlib.Path, workdir: pathlib.Path) -> None:
        self.cluster, self.kubeconfig, self.workdir = cluster, kubeconfig, workdir
        self.namespace = f"adm-{uuid.uuid4().hex[:6]}"
        self.port = processes.free_port()
        self.operator: operator_env.Operator | None = None

    def start(self) -> operator_env.Operator:
        env = {**OPERATOR_ENV, "WALLET_NAMESPACES": self.namespace, "WALLET_LEASE_NAME": "wallet-admission-tests"}
        self.operator = operator_env.Operator(
            self.kubeconfig, self.workdir, f"adm-{uuid.uuid4().hex[:6]}", env, webhook_port=self.port
        ).start()
        processes.wait_until(self.operator.ready, 30, "the webhook serving")
        return self.operator

    def stop(self) -> None:
        if self.operator is not None:
            self.operator.stop()
            self.operator = None


@pytest.fixture(scope="module")
def webhook(
    cluster: Cluster, operator_kubeconfig: pathlib.Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Webhook]:
    hook = Webhook(cluster, operator_kubeconfig, tmp_path_factory.mktemp("webhook"))
    client = cluster.client
    client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": hook.namespace}}, "wallet-tests")
    # What the chart installs: the configuration without a CA bundle (the operator adds it; its RBAC
    # may patch this one object but not create one).
    url = {"url": f"https://127.0.0.1:{hook.port}{admission.PATH}"}
    client.apply(install.render_webhook_configuration(url, watched=(hook.namespace,)), "helm")
    client.delete("v1", "Secret", SECRET, operator_env.NAMESPACE)
    try:
        hook.start()
        yield hook
    finally:
        hook.stop()
        client.delete(*CONFIG)
        client.delete("v1", "Namespace", hook.namespace)


def in_namespace(doc: dict[str, Any], namespace: str) -> dict[str, Any]:
    return {**doc, "metadata": {**doc["metadata"], "namespace": namespace}}


def refusal(client: kube.Kube, doc: dict[str, Any]) -> kube.ApiError:
    with pytest.raises(kube.ApiError) as caught:
        client.create(doc)
    return caught.value


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_the_api_server_refuses_every_invalid_fixture_as_walletctl_validate_does(
    path: pathlib.Path, webhook: Webhook, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = in_namespace(load(path), webhook.namespace)
    error = refusal(webhook.cluster.client, doc)
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    assert error.status in (400, 422), error
    assert expected in error.message, error.message
    if rejected_by(path) == "webhook":  # the schema and CEL refuse before the webhook is called
        assert 'admission webhook "validate.wallet.platform.io" denied the request' in error.message
        assert cli_main.main(["validate", "-f", str(path)]) == 2
        for line in capsys.readouterr().err.splitlines():  # the same words, the namespace aside
            assert line.replace("default", webhook.namespace) in error.message, (line, error.message)


@pytest.mark.parametrize("path", EXAMPLES + POLICIES, ids=lambda p: p.name)
def test_the_examples_and_policies_are_admitted(path: pathlib.Path, webhook: Webhook) -> None:
    client = webhook.cluster.client
    doc = in_namespace(load(path), webhook.namespace)
    doc["metadata"]["name"] = f"{doc['metadata']['name'][:30]}-{uuid.uuid4().hex[:4]}"
    created = client.create(doc)
    client.delete(doc["apiVersion"], doc["kind"], doc["metadata"]["name"], webhook.namespace)
    assert created["metadata"]["uid"]


def test_a_change_to_an_invalid_spec_is_refused_and_the_stored_object_keeps_its_spec(webhook: Webhook) -> None:
    client = webhook.cluster.client
    doc = in_namespace(load(EXAMPLES[0]), webhook.namespace)
    doc["metadata"]["name"] = "kept"
    stored = client.create(doc)
    broken = {**stored, "spec": {**stored["spec"], "services": [*stored["spec"]["services"], {"name": "ledger"}]}}
    with pytest.raises(kube.ApiError) as caught:
        client.replace(broken)
    assert "'ledger' is not a catalog service" in caught.value.message
    after = client.get(doc["apiVersion"], doc["kind"], "kept", webhook.namespace)
    assert after is not None and after["spec"] == stored["spec"]
    # Metadata alone stays writable (Kopf's annotations, finalizers), and the object deletable.
    client.replace({**after, "metadata": {**after["metadata"], "labels": {"team": "payments"}}})
    client.delete(doc["apiVersion"], doc["kind"], "kept", webhook.namespace)
    metrics = webhook.operator.metrics() if webhook.operator else ""
    assert 'wallet_operator_admission_reviews_total{kind="WalletPlatform",result="refused"}' in metrics


def test_the_operator_keeps_one_certificate_and_the_webhook_fails_closed_while_it_is_down(webhook: Webhook) -> None:
    client = webhook.cluster.client
    secret = client.get("v1", "Secret", SECRET, operator_env.NAMESPACE)
    assert secret is not None
    config = client.get(*CONFIG)
    assert config is not None
    (hook,) = config["webhooks"]
    assert base64.b64decode(hook["clientConfig"]["caBundle"]) == base64.b64decode(secret["data"]["ca.crt"])
    served = ssl.get_server_certificate(("127.0.0.1", webhook.port))
    assert served.strip() == base64.b64decode(secret["data"]["tls.crt"]).decode().strip()

    doc = in_namespace(load(EXAMPLES[0]), webhook.namespace)
    doc["metadata"]["name"] = "while-down"
    webhook.stop()
    error = refusal(client, doc)  # nothing answers: the API server refuses rather than admit unchecked
    assert 'failed calling webhook "validate.wallet.platform.io"' in error.message, error.message
    webhook.start()
    after = client.get("v1", "Secret", SECRET, operator_env.NAMESPACE)
    assert after is not None and after["data"] == secret["data"]  # the restarted operator reused it
    assert client.create(doc)["metadata"]["name"] == "while-down"
    client.delete(doc["apiVersion"], doc["kind"], "while-down", webhook.namespace)
