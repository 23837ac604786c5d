"""The local node's rendered configuration keeps every packet on this machine and the node locked down
(pure functions; the node itself is tested in tests/integration/test_node.py)."""

from __future__ import annotations

import pathlib

import pytest
from walletplatform.devenv import containerd, coredns, data_operators, hostnet, images, kubelet, kubeproxy, storage
from walletplatform.models import platform
from walletplatform.render import postgres, redis


def test_pods_get_no_default_route_and_no_masquerade(tmp_path: pathlib.Path) -> None:
    bridge = containerd.render_cni(tmp_path)["plugins"][0]  # type: ignore[index]
    routes = [r["dst"] for r in bridge["ipam"]["routes"]]
    assert routes == [f"{hostnet.NODE_IP}/32", hostnet.SERVICE_CIDR]
    assert "0.0.0.0/0" not in routes and bridge["ipMasq"] is False


def test_containerd_uses_cgroupfs_and_restricts_oom_score_adj(tmp_path: pathlib.Path) -> None:
    config = containerd.render_config(tmp_path, tmp_path / "root", "localhost/wallet-pause:0.1.0")
    assert "SystemdCgroup = false" in config and "restrict_oom_score_adj = true" in config
    assert str(hostnet.RUNTIME_DIR / "containerd.sock") in config  # short socket path
    assert 'sandbox_image = "localhost/wallet-pause:0.1.0"' in config


def test_cluster_dns_answers_only_cluster_zones_and_forwards_nothing(tmp_path: pathlib.Path) -> None:
    corefile = coredns.render_corefile(tmp_path / "kubeconfig", 1, 2)
    assert corefile.startswith("cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {")
    assert "forward" not in corefile and f"bind {hostnet.NODE_IP}" in corefile


def test_kubelet_refuses_anonymous_requests_and_serves_on_the_node_address(tmp_path: pathlib.Path) -> None:
    config = kubelet.render_config(
        tmp_path, "unix:///x.sock", tmp_path / "ca.crt", 1, (tmp_path / "k.crt", tmp_path / "k.key")
    )
    assert config["authentication"] == {
        "anonymous": {"enabled": False},
        "webhook": {"enabled": True},
        "x509": {"clientCAFile": str(tmp_path / "ca.crt")},
    }
    assert config["authorization"] == {"mode": "Webhook"} and config["readOnlyPort"] == 0
    assert config["address"] == hostnet.NODE_IP and config["cgroupDriver"] == "cgroupfs"


def test_kube_proxy_opens_node_ports_on_the_node_address_only(tmp_path: pathlib.Path) -> None:
    config = kubeproxy.render_config(tmp_path / "kubeconfig", 1, 2)
    assert config["nodePortAddresses"] == [f"{hostnet.NODE_IP}/32"]
    assert config["conntrack"]["maxPerCore"] == 0  # type: ignore[index]


def test_image_cache_key_follows_the_inputs(tmp_path: pathlib.Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "app.py").write_text("print(1)\n")
    image = images.Image("x", "localhost/x:1", tmp_path / "Dockerfile", tmp_path, ("Dockerfile", "*.py"))
    first = images.content_key(image, "base1")
    (tmp_path / "notes.md").write_text("not an input")
    assert images.content_key(image, "base1") == first
    (tmp_path / "app.py").write_text("print(2)\n")
    assert images.content_key(image, "base1") != first
    assert images.content_key(image, "base2") != images.content_key(image, "base1")


def test_a_claim_gets_a_local_volume_of_its_own_pinned_to_the_node(tmp_path: pathlib.Path) -> None:
    claim = {
        "metadata": {"name": "wallet-dev-pg-1", "namespace": "wallet-dev", "uid": "0b7c"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}},
    }
    volume = storage.volume_for(claim, tmp_path)
    spec = volume["spec"]
    assert volume["metadata"]["name"] == "pvc-0b7c"
    assert spec["local"] == {"path": str(tmp_path / "pvc-0b7c")}  # local, not hostPath: the pod's fsGroup applies
    assert spec["capacity"] == {"storage": "5Gi"} and spec["storageClassName"] == storage.CLASS_NAME
    assert spec["claimRef"]["uid"] == "0b7c" and spec["claimRef"]["name"] == "wallet-dev-pg-1"
    terms = spec["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["values"] == [kubelet.NODE_NAME]
    assert storage.storage_class()["metadata"]["annotations"] == {"storageclass.kubernetes.io/is-default-class": "true"}


def test_published_operator_manifests_run_the_local_image_without_pulling() -> None:
    deployment = {
        "kind": "Deployment",
        "metadata": {"name": "cnpg-controller-manager"},
        "spec": {"template": {"spec": {"containers": [{
            "name": "manager", "image": "ghcr.io/cloudnative-pg/cloudnative-pg:1.27.1", "imagePullPolicy": "Always",
            "env": [{"name": "OPERATOR_IMAGE_NAME", "value": "ghcr.io/cloudnative-pg/cloudnative-pg:1.27.1"}],
        }]}}},
    }  # fmt: skip
    docs = data_operators._use_local_image([{"kind": "Service"}, deployment], "cnpg-controller-manager", images.CNPG)
    (container,) = docs[1]["spec"]["template"]["spec"]["containers"]
    assert (container["image"], container["imagePullPolicy"]) == (images.CNPG, "IfNotPresent")
    assert container["env"] == [{"name": "OPERATOR_IMAGE_NAME", "value": images.CNPG}]
    with pytest.raises(RuntimeError, match="no Deployment redis-operator"):
        data_operators._use_local_image([deployment], "redis-operator", images.REDIS_OPERATOR)


def test_every_data_tier_image_the_renderer_names_is_built_here() -> None:
    built = {image.reference for image in images.IMAGES}
    assert f"{postgres.IMAGE}:{platform.Postgres().version}" in built
    assert postgres.PGBOUNCER_IMAGE in built
    assert f"{redis.IMAGE}:{platform.Redis().version}" in built
