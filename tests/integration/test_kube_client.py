"""The project's own Kubernetes client against the real kube-apiserver: every way a kubeconfig may
authenticate (embedded client certificate, token, token file, exec plugin), lists in pages that are
one snapshot, watches, and errors that carry the server's status and message."""

from __future__ import annotations

import base64
import json
import pathlib
import stat
import urllib.parse
from typing import Any

import pytest
import yaml
from walletplatform.clients import kube, kubeconfig
from walletplatform.devenv import pki

from tests.integration.conftest import Cluster

pytestmark = pytest.mark.integration


def write_kubeconfig(cluster: Cluster, path: pathlib.Path, user: dict[str, Any]) -> pathlib.Path:
    assert cluster.plane is not None
    ca = (cluster.plane.workdir / "certs" / "apiserver.crt").read_bytes()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "c",
        "clusters": [
            {
                "name": "k",
                "cluster": {"server": cluster.plane.url, "certificate-authority-data": base64.b64encode(ca).decode()},
            }
        ],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    }
    path.write_text(yaml.safe_dump(config))
    return path


def namespaces(client: kube.Kube) -> set[str]:
    return {ns["metadata"]["name"] for ns in client.list("v1", "Namespace")}


def test_every_kubeconfig_credential_reaches_the_server(cluster: Cluster, tmp_path: pathlib.Path) -> None:
    assert cluster.plane is not None
    token = cluster.plane.token
    # A client certificate from the CA kube-apiserver trusts (--client-ca-file), embedded as data.
    crt, key = pki.client_certificate(cluster.plane.workdir / "pki", "kube-client-test", "/CN=tester/O=system:masters")
    embedded = {
        "client-certificate-data": base64.b64encode(crt.read_bytes()).decode(),
        "client-key-data": base64.b64encode(key.read_bytes()).decode(),
    }
    (tmp_path / "token").write_text(token + "\n")
    plugin = tmp_path / "credential-plugin"
    credential = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": {"token": token}}
    # Like client-go, the client tells the plugin the protocol it speaks (KUBERNETES_EXEC_INFO).
    plugin.write_text(
        f"#!/bin/sh\necho \"$KUBERNETES_EXEC_INFO\" | grep -q '\"interactive\": false' || exit 1\necho '{json.dumps(credential)}'\n"
    )
    plugin.chmod(plugin.stat().st_mode | stat.S_IXUSR)
    users = {
        "certificate": embedded,
        "token": {"token": token},
        "token-file": {"tokenFile": "token"},  # relative to the kubeconfig
        "exec": {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin)}},
    }
    for name, user in users.items():
        client = kube.Kube(write_kubeconfig(cluster, tmp_path / f"{name}.kubeconfig", user))
        assert "kube-system" in namespaces(client), name


def test_a_wrong_token_is_refused_with_the_servers_status(cluster: Cluster, tmp_path: pathlib.Path) -> None:
    client = kube.Kube(write_kubeconfig(cluster, tmp_path / "wrong.kubeconfig", {"token": "not-a-token"}))
    with pytest.raises(kube.ApiError) as caught:
        namespaces(client)
    assert caught.value.status == 401


def test_a_failing_credential_plugin_is_a_config_error_naming_it(cluster: Cluster, tmp_path: pathlib.Path) -> None:
    plugin = tmp_path / "broken-plugin"
    plugin.write_text("#!/bin/sh\necho 'no credentials for you' >&2\nexit 3\n")
    plugin.chmod(plugin.stat().st_mode | stat.S_IXUSR)
    path = write_kubeconfig(cluster, tmp_path / "exec.kubeconfig", {"exec": {"command": str(plugin)}})
    with pytest.raises(
        kubeconfig.ConfigError, match=r"not a usable kubeconfig: exec .*broken-plugin: exit status 3: no cred"
    ):
        kube.Kube(path)
    plugin.write_text("#!/bin/sh\necho 'not json'\n")
    with pytest.raises(kubeconfig.ConfigError, match="broken-plugin: not an ExecCredential: 'not json"):
        kube.Kube(path)


def test_a_list_comes_in_pages_of_one_snapshot(
    cluster: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(5):
        cluster.client.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"page-{n}", "namespace": namespace, "labels": {"paged": "yes"}},
            },
            "wallet-tests",
        )
    monkeypatch.setattr(kube, "PAGE", 2)
    pages = list(cluster.client.pages("v1", "ConfigMap", namespace, "paged=yes"))
    names = [obj["metadata"]["name"] for page, _ in pages for obj in page]
    assert [len(page) for page, _ in pages] == [2, 2, 1]
    assert sorted(names) == [f"page-{n}" for n in range(5)]
    assert len({version for _, version in pages}) == 1  # every page from the same resourceVersion
    objects, version = cluster.client.list_versioned("v1", "ConfigMap", namespace, "paged=yes")
    assert len(objects) == 5 and objects[0]["kind"] == "ConfigMap" and version


def test_a_watch_sees_changes_after_its_version_and_ends_when_the_server_ends_it(
    cluster: Cluster, namespace: str
) -> None:
    _, version = cluster.client.list_versioned("v1", "ConfigMap", namespace)
    cluster.client.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "watched", "namespace": namespace, "labels": {"watched": "yes"}},
        },
        "wallet-tests",
    )
    cluster.client.delete("v1", "ConfigMap", "watched", namespace)
    events = [
        (kind, obj["metadata"].get("name"))
        for kind, obj in cluster.client.watch(
            "v1", "ConfigMap", namespace=namespace, selector="watched=yes", resource_version=version, seconds=2
        )
        if kind != "BOOKMARK"
    ]
    assert events == [("ADDED", "watched"), ("DELETED", "watched")]


def test_an_unserved_kind_is_not_served_and_a_missing_object_is_none(cluster: Cluster, namespace: str) -> None:
    assert cluster.client.served("apps/v1", "Deployment")
    assert not cluster.client.served("apps/v1", "NoSuchKind")
    assert not cluster.client.served("nosuch.example.com/v1", "Thing")
    assert cluster.client.get("v1", "ConfigMap", "absent", namespace) is None
    cluster.client.delete("v1", "ConfigMap", "absent", namespace)  # deleting what is gone is not an error


def test_in_cluster_the_service_account_token_is_read_and_read_again(
    cluster: Cluster, namespace: str, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in a pod: the API server from KUBERNETES_SERVICE_HOST/PORT, the CA and a bound token from the
    mounted ServiceAccount folder, the token read again once the kubelet may have rotated it."""
    assert cluster.plane is not None
    cluster.client.apply(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "pod", "namespace": namespace}},
        "wallet-tests",
    )
    folder = tmp_path / "serviceaccount"
    folder.mkdir()
    (folder / "ca.crt").write_bytes((cluster.plane.workdir / "certs" / "apiserver.crt").read_bytes())
    (folder / "token").write_text(cluster.client.service_account_token(namespace, "pod"))
    url = urllib.parse.urlsplit(cluster.plane.url)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", str(url.hostname))
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(url.port))
    monkeypatch.setattr(kubeconfig, "SERVICE_ACCOUNT", folder)
    monkeypatch.setattr(kubeconfig, "TOKEN_REREAD_SECONDS", 0)
    client = kube.Kube()
    with pytest.raises(kube.ApiError) as caught:  # the account may do nothing: the server knows who asks
        client.list("v1", "Secret", namespace)
    assert caught.value.status == 403 and f"system:serviceaccount:{namespace}:pod" in caught.value.message
    (folder / "token").write_text("rotated-away")
    with pytest.raises(kube.ApiError) as caught:
        client.list("v1", "Secret", namespace)
    assert caught.value.status == 401  # the file was read again


def test_outside_a_cluster_the_in_cluster_config_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(kubeconfig.ConfigError, match="KUBERNETES_SERVICE_HOST"):
        kube.Kube()
