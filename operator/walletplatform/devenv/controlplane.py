"""A real local Kubernetes control plane: etcd + kube-apiserver (RBAC, PodSecurity admission,
service-account signing keys, a serving certificate) + kube-controller-manager, on free loopback
ports, with an admin kubeconfig. Used by the integration-test fixtures and by ``walletctl demo``.

For a node (devenv.node) kube-apiserver binds to and advertises the node address instead of
loopback, so that pods reach it through the ``kubernetes`` Service; it then also authorizes kubelets
(Node,RBAC), knows the node components' users and presents a client certificate to the kubelet."""

from __future__ import annotations

import json
import pathlib
import secrets
import ssl
import subprocess
import urllib.request
from typing import Any

from walletplatform.devenv import hostnet, pki, processes, toolchain

SERVICE_CIDR = hostnet.SERVICE_CIDR
# Users of the node's components (token authentication): the bootstrap RBAC binds the first three.
NODE_USERS = {
    "kubelet": ("system:node:wallet-node", "system:nodes"),
    "metrics-server": ("system:wallet-metrics-server", ""),
    "kube-proxy": ("system:kube-proxy", ""),
    "kube-scheduler": ("system:kube-scheduler", ""),
    "coredns": ("system:wallet-coredns", ""),
}
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
READ_VERBS = ("get", "list", "watch")
# Metadata-level audit of every write, and of service accounts' reads (the operator runs as one): the
# benchmark and tests count the operator's requests here, by verb.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "Metadata", "verbs": list(WRITE_VERBS)},
        {"level": "Metadata", "verbs": list(READ_VERBS), "userGroups": ["system:serviceaccounts"]},
        {"level": "None"},
    ],
}


class ControlPlane:
    """Start with ``start()``, stop with ``stop()``; logs stay in ``workdir/logs``."""

    def __init__(self, workdir: pathlib.Path, binaries: toolchain.Binaries, address: str = "127.0.0.1") -> None:
        self.workdir = workdir
        self.address = address
        self.with_node = address != "127.0.0.1"
        self.node_tokens = {name: secrets.token_hex(16) for name in NODE_USERS}
        self.binaries = binaries
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.token = secrets.token_hex(16)
        self.port = processes.free_port()
        self.kcm_port = processes.free_port()
        self.etcd_port, self.etcd_peer = processes.free_port(), processes.free_port()
        self.kubeconfig = workdir / "admin.kubeconfig"
        self.audit_log = workdir / "audit.jsonl"
        self.etcd: processes.Process | None = None
        self.apiserver: processes.Process | None = None
        self.controller_manager: processes.Process | None = None

    @property
    def url(self) -> str:
        return f"https://{self.address}:{self.port}"

    def _keys(self) -> None:
        key, pub = self.workdir / "sa.key", self.workdir / "sa.pub"
        subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
        subprocess.run(
            ["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(pub)], check=True, capture_output=True
        )
        lines = [f'{self.token},admin,admin,"system:masters"']
        for name, (user, group) in NODE_USERS.items():
            lines.append(
                f'{self.node_tokens[name]},{user},{user},"{group}"'
                if group
                else f"{self.node_tokens[name]},{user},{user}"
            )
        (self.workdir / "tokens.csv").write_text("\n".join(lines) + "\n")
        (self.workdir / "audit-policy.json").write_text(json.dumps(AUDIT_POLICY))

    def write_kubeconfig(self, path: pathlib.Path, token: str, user: str = "admin") -> pathlib.Path:
        """A kubeconfig for this control plane authenticating with ``token`` (admin or a ServiceAccount's)."""
        ca = self.workdir / "certs" / "apiserver.crt"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "wallet-local",
            "clusters": [{"name": "wallet-local", "cluster": {"server": self.url, "certificate-authority": str(ca)}}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "wallet-local", "context": {"cluster": "wallet-local", "user": user}}],
        }
        path.write_text(json.dumps(config, indent=2))
        return path

    def requests(self, user: str) -> list[dict[str, Any]]:
        """Every audited request ``user`` made so far (writes; reads too for a service account)."""
        if not self.audit_log.exists():
            return []
        events = []
        for line in self.audit_log.read_text().splitlines():
            event = json.loads(line)
            if event.get("stage") == "ResponseComplete" and event.get("user", {}).get("username") == user:
                events.append(event)
        return events

    def write_requests(self, user: str) -> list[dict[str, object]]:
        """Every write request ``user`` made so far, from the audit log (one dict per request)."""
        return [event for event in self.requests(user) if event.get("verb") in WRITE_VERBS]

    def start_etcd(self) -> None:
        self.etcd = processes.Process(
            "etcd",
            [
                str(self.binaries.etcd),
                "--data-dir",
                str(self.workdir / "etcd"),
                "--name",
                "default",
                "--listen-client-urls",
                f"http://127.0.0.1:{self.etcd_port}",
                "--advertise-client-urls",
                f"http://127.0.0.1:{self.etcd_port}",
                "--listen-peer-urls",
                f"http://127.0.0.1:{self.etcd_peer}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{self.etcd_peer}",
                "--initial-cluster",
                f"default=http://127.0.0.1:{self.etcd_peer}",
                "--unsafe-no-fsync",
                "--log-level",
                "warn",
            ],
            self.logs,
        ).start()
        processes.wait_until(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{self.etcd_port}/health", timeout=2).status == 200,
            30,
            "etcd",
        )

    def start_apiserver(self) -> None:
        self.apiserver = processes.Process(
            "kube-apiserver",
            [
                str(self.binaries.kube_apiserver),
                f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
                f"--cert-dir={self.workdir / 'certs'}",
                f"--secure-port={self.port}",
                f"--bind-address={self.address}",
                f"--advertise-address={self.address}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--authorization-mode={'Node,RBAC' if self.with_node else 'RBAC'}",
                *self._kubelet_client_flags(),
                f"--client-ca-file={self.kubelet_client_ca}",  # client certificates the cluster CA signed
                f"--token-auth-file={self.workdir / 'tokens.csv'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={self.workdir / 'sa.pub'}",
                f"--service-account-signing-key-file={self.workdir / 'sa.key'}",
                "--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,PodSecurity,"
                "ResourceQuota,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy",
                f"--audit-policy-file={self.workdir / 'audit-policy.json'}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--audit-log-mode=blocking",
                "--v=1",
            ],
            self.logs,
        ).start()
        processes.wait_until(self.ready, 90, "kube-apiserver /readyz")

    def _kubelet_client_flags(self) -> list[str]:
        if not self.with_node:
            return []
        crt, key = pki.client_certificate(
            self.workdir / "pki", "apiserver-kubelet-client", "/CN=kube-apiserver-kubelet-client/O=system:masters"
        )
        # The aggregation layer (metrics-server's metrics.k8s.io): a front-proxy CA of its own.
        proxy_crt, proxy_key = pki.client_certificate(
            self.workdir / "front-proxy", "front-proxy-client", "/CN=front-proxy-client"
        )
        return [
            f"--kubelet-client-certificate={crt}",
            f"--kubelet-client-key={key}",
            f"--kubelet-certificate-authority={self.kubelet_client_ca}",
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            f"--requestheader-client-ca-file={pki.ensure_ca(self.workdir / 'front-proxy')[0]}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-username-headers=X-Remote-User",
            f"--proxy-client-cert-file={proxy_crt}",
            f"--proxy-client-key-file={proxy_key}",
            "--enable-aggregator-routing=true",
        ]

    @property
    def kubelet_client_ca(self) -> pathlib.Path:
        """The cluster CA: the kubelet accepts its client certificates (kube-apiserver's among them), and
        it signs the serving certificates of the kubelet and metrics-server."""
        return pki.ensure_ca(self.workdir / "pki")[0]

    def serving_certificate(self, name: str, ips: list[str], dns: list[str]) -> tuple[pathlib.Path, pathlib.Path]:
        return pki.serving_certificate(self.workdir / "pki", name, ips, dns)

    def node_kubeconfig(self, component: str, path: pathlib.Path) -> pathlib.Path:
        """A kubeconfig for a node component (kubelet, kube-proxy, kube-scheduler, coredns)."""
        return self.write_kubeconfig(path, self.node_tokens[component], user=NODE_USERS[component][0])

    def start_controller_manager(self) -> None:
        self.controller_manager = processes.Process(
            "kube-controller-manager",
            [
                str(self.binaries.kube_controller_manager),
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                f"--service-account-private-key-file={self.workdir / 'sa.key'}",
                f"--root-ca-file={self.workdir / 'certs' / 'apiserver.crt'}",
                "--leader-elect=false",
                "--use-service-account-credentials=true",
                f"--secure-port={self.kcm_port}",
                "--bind-address=127.0.0.1",
                "--horizontal-pod-autoscaler-sync-period=5s",
                # With a node, its lifecycle controller lifts the not-ready taint the kubelet registers with.
                "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-route"
                + ("" if self.with_node else ",-nodelifecycle"),
                "--v=1",
            ],
            self.logs,
        ).start()
        processes.wait_until(self._kcm_healthy, 60, "kube-controller-manager /healthz")

    def start(self) -> ControlPlane:
        self._keys()
        self.start_etcd()
        self.start_apiserver()
        self.write_kubeconfig(self.kubeconfig, self.token)
        self.start_controller_manager()
        return self

    def _get(self, url: str) -> int:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=3, context=context) as response:
            status: int = response.status
            return status

    def ready(self) -> bool:
        return self._get(f"{self.url}/readyz") == 200

    def _kcm_healthy(self) -> bool:
        return self._get(f"https://127.0.0.1:{self.kcm_port}/healthz") == 200

    def restart_apiserver(self) -> None:
        """Stop and start kube-apiserver on the same port (for recovery tests)."""
        assert self.apiserver is not None
        self.apiserver.stop()
        self.start_apiserver()

    def stop(self) -> None:
        for process in (self.controller_manager, self.apiserver, self.etcd):
            if process is not None:
                process.stop()

    def logs_tail(self, lines: int = 30) -> str:
        parts = []
        for process in (self.etcd, self.apiserver, self.controller_manager):
            if process is not None:
                parts.append(f"==== {process.name} ({process.log_path}) ====\n{process.tail(lines)}")
        return "\n".join(parts)
