"""containerd (Debian's 1.6, with runc and the CNI plugins) for the local node: its CRI plugin with the
two settings this VM needs (the cgroupfs driver, because systemd is not PID 1, and
``restrict_oom_score_adj``, because the VM lacks CAP_SYS_RESOURCE), a bridge network for pods, and
the pod sandbox image built locally. Images are imported from archives (no registry). Used by
devenv.node."""

from __future__ import annotations

import contextlib
import json
import pathlib
import subprocess

from walletplatform.devenv import hostnet, processes

CNI_BIN = "/usr/lib/cni"
NAMESPACE = "k8s.io"  # the CRI plugin's containerd namespace


def render_config(workdir: pathlib.Path, root: pathlib.Path, sandbox_image: str) -> str:
    """containerd's config.toml (version 2): content and snapshots under ``root`` (kept between runs, so
    an image imported once is not imported again), state under ``workdir``, pods on our CNI bridge."""
    return f"""version = 2
root = "{root}"
state = "{hostnet.RUNTIME_DIR / "containerd-state"}"
[grpc]
  address = "{hostnet.RUNTIME_DIR / "containerd.sock"}"
[ttrpc]
  address = "{hostnet.RUNTIME_DIR / "containerd.sock.ttrpc"}"
[debug]
  level = "warn"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{workdir / "cni"}"
"""


def render_cni(workdir: pathlib.Path) -> dict[str, object]:
    """A bridge with host-local addresses from the node's pod range. Pods get routes to the node
    address and the Service range only, no default route and no masquerade: nothing a pod sends can
    leave the machine."""
    return {
        "cniVersion": "0.4.0",
        "name": "wallet-pods",
        "plugins": [
            {
                "type": "bridge",
                "bridge": hostnet.BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": hostnet.POD_CIDR}]],
                    "routes": [{"dst": f"{hostnet.NODE_IP}/32"}, {"dst": hostnet.SERVICE_CIDR}],
                    "dataDir": str(workdir / "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
            {"type": "loopback"},
        ],
    }


class Containerd:
    def __init__(self, workdir: pathlib.Path, root: pathlib.Path, logs: pathlib.Path, sandbox_image: str) -> None:
        self.workdir = workdir
        self.root = root
        self.logs = logs
        self.sandbox_image = sandbox_image
        self.socket = hostnet.RUNTIME_DIR / "containerd.sock"
        self.process: processes.Process | None = None

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> Containerd:
        hostnet.RUNTIME_DIR.mkdir(parents=True, exist_ok=True)
        (self.workdir / "cni").mkdir(parents=True, exist_ok=True)
        config = self.workdir / "config.toml"
        config.write_text(render_config(self.workdir, self.root, self.sandbox_image))
        (self.workdir / "cni" / "10-wallet.conflist").write_text(json.dumps(render_cni(self.workdir), indent=2))
        self.process = processes.Process("containerd", ["containerd", "--config", str(config)], self.logs).start()
        self.process.wait_ready(self.ready, 30, "containerd")
        return self

    def ctr(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(
            ["ctr", "--address", str(self.socket), "--namespace", NAMESPACE, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def ready(self) -> bool:
        return self.socket.exists() and bool(self.ctr("version", timeout=5))

    def import_image(self, archive: pathlib.Path) -> None:
        """Import an image archive (docker-archive or OCI) into the CRI namespace, unless the same
        archive was imported into this root before (the archive's name carries its content key)."""
        marker = self.root / "imported" / archive.name
        if marker.exists():
            return
        self.ctr("images", "import", "--no-unpack", str(archive))
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()

    def images(self) -> list[str]:
        return [line.split()[0] for line in self.ctr("images", "list").splitlines()[1:] if line.strip()]

    def remove_all_containers(self) -> None:
        """Kill every task and delete every container of the CRI namespace (what the kubelet left)."""
        for line in self.ctr("tasks", "list").splitlines()[1:]:
            if line.strip():
                task = line.split()[0]
                subprocess.run(
                    ["ctr", "--address", str(self.socket), "-n", NAMESPACE, "tasks", "kill", "-s", "SIGKILL", task],
                    capture_output=True,
                    check=False,
                )
        for line in self.ctr("containers", "list", "-q").splitlines():
            if line.strip():
                subprocess.run(
                    ["ctr", "--address", str(self.socket), "-n", NAMESPACE, "containers", "delete", line.strip()],
                    capture_output=True,
                    check=False,
                )

    def stop(self) -> None:
        if self.process is not None and self.process.running:
            # On failure hostnet.clear kills the shims and unmounts what they left.
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired, OSError):
                self.remove_all_containers()
            self.process.stop()
        hostnet.kill_matching(str(self.socket))  # the shims
