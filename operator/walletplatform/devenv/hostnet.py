"""What the local node changes on the host, recorded and undone: the node address on an interface the
harness adds (a dummy, or a port-less bridge where the kernel has no dummy driver), the route to the
Service range, the sysctls it sets, the iptables rules kube-proxy and the CNI plugins write (a
snapshot of every table before the start, restored at the stop), the CNI bridge, the pods' network
namespaces, containers, mounts and cgroups, and the fixed host folders containerd and the kubelet
make.

A record of what was changed (``/run/wallet-platform/node.json``) lets a new start detect a node that
is still running (refused: one node per machine, iptables is global) or one whose process died
without cleaning up (cleared before the new start). Used by devenv.node."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import time

# Addresses the harness reserves for itself, apart from the pod and Service ranges; never the uplink's.
NODE_IP = "10.250.0.1"
INTERFACE = "wallet0"
BRIDGE = "wallet-cni0"
POD_CIDR = "10.244.0.0/24"
SERVICE_CIDR = "10.96.0.0/16"
STATE_DIR = pathlib.Path("/run/wallet-platform")
RECORD = STATE_DIR / "node.json"
# Unix sockets live here, not under the workdir: a socket path has at most 107 bytes, and the kubelet's
# root (pod-resources, plugins) and containerd's sockets under a pytest folder are longer.
RUNTIME_DIR = STATE_DIR / "node"
NETNS_DIR = pathlib.Path("/run/netns")
SYSCTLS = {
    "net.ipv4.ip_forward": "1",
    "net.bridge.bridge-nf-call-iptables": "1",
    "net.bridge.bridge-nf-call-ip6tables": "1",
}
# Folders the CRI plugin, the CNI plugins and the kubelet use whatever their flags say: cleared of our
# mounts at stop, and removed when they did not exist before the node started.
FIXED_PATHS = tuple(
    pathlib.Path(p) for p in ("/run/containerd", "/var/lib/kubelet", "/var/lib/cni", "/var/log/containers")
)
RUNC_ROOT = pathlib.Path("/run/containerd/runc/k8s.io")  # runc's state of the CRI namespace's containers
CGROUP_ROOT = pathlib.Path("/sys/fs/cgroup")
POD_CGROUP = "kubepods"  # the kubelet's pod cgroups (cgroupfs driver), one per controller


BUILTIN_CHAINS = {"INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING"}


class NodeBusyError(RuntimeError):
    """Another node of this harness runs on this machine."""


def _run(*argv: str, check: bool = True, stdin: str | None = None) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, input=stdin)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def _sysctl_path(name: str) -> pathlib.Path:
    return pathlib.Path("/proc/sys") / name.replace(".", "/")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _netns() -> set[str]:
    return {p.name for p in NETNS_DIR.iterdir()} if NETNS_DIR.is_dir() else set()


def _mounts_under(roots: list[pathlib.Path]) -> list[str]:
    points = []
    for line in pathlib.Path("/proc/self/mounts").read_text().splitlines():
        point = line.split()[1].replace("\\040", " ")
        if any(point == str(root) or point.startswith(f"{root}/") for root in roots):
            points.append(point)
    return sorted(points, key=len, reverse=True)  # deepest first


def _link_exists(name: str) -> bool:
    return pathlib.Path(f"/sys/class/net/{name}").exists()


class HostNetwork:
    """``claim()`` before anything starts, ``release()`` after everything stopped."""

    def __init__(self, workdir: pathlib.Path) -> None:
        self.workdir = workdir

    # -- the record ------------------------------------------------------------------------------
    @staticmethod
    def leftover() -> dict[str, object] | None:
        """The record of an earlier node, or None."""
        try:
            record: dict[str, object] = json.loads(RECORD.read_text())
        except (OSError, ValueError):
            return None
        return record

    def claim(self) -> None:
        """Refuse when a node runs; clear what a crashed one left; record the host's state; add the
        interface and set the sysctls."""
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        record = self.leftover()
        if record is not None:
            pid = int(str(record.get("pid", 0)))
            if pid and pid != os.getpid() and _alive(pid):
                raise NodeBusyError(
                    f"a local node already runs on this machine (pid {pid}, state in {record.get('workdir')}); "
                    "one node per machine: stop it first (iptables and the CNI paths are global)"
                )
            clear(record)
        snapshot = {
            "pid": os.getpid(),
            "workdir": str(self.workdir),
            "iptables": _run("iptables-save"),
            "ip6tables": _run("ip6tables-save", check=False),
            "sysctls": {
                name: _sysctl_path(name).read_text().strip() for name in SYSCTLS if _sysctl_path(name).exists()
            },
            "netns": sorted(_netns()),
            "created_interface": not _link_exists(INTERFACE),
            "existing_paths": [str(p) for p in FIXED_PATHS if p.exists()],
        }
        RECORD.write_text(json.dumps(snapshot))
        # A dummy interface; where the kernel has no dummy driver (this VM), a bridge without ports,
        # which holds an address the same way and connects to nothing.
        dummy = ["ip", "link", "add", INTERFACE, "type", "dummy"]
        if snapshot["created_interface"] and subprocess.run(dummy, capture_output=True, check=False).returncode:
            _run("ip", "link", "add", INTERFACE, "type", "bridge")
        _run("ip", "addr", "replace", f"{NODE_IP}/32", "dev", INTERFACE)
        _run("ip", "link", "set", INTERFACE, "up")
        # The host reaches Services from the node address, not from the uplink's.
        _run("ip", "route", "replace", SERVICE_CIDR, "dev", INTERFACE, "src", NODE_IP)
        for name, value in SYSCTLS.items():
            path = _sysctl_path(name)
            if path.exists():
                path.write_text(value)

    def release(self) -> None:
        """Undo everything ``claim`` and the node's components changed; nothing when this process does
        not hold the claim (a refused second node must not clear the running one)."""
        record = self.leftover()
        if record is not None and record.get("pid") == os.getpid() and record.get("workdir") == str(self.workdir):
            clear(record)


def _matching(pattern: str) -> list[int]:
    pids = []
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if pattern in cmdline:
            pids.append(int(proc.name))
    return pids


def kill_matching(pattern: str, timeout: float = 10.0) -> None:
    """SIGKILL every process whose command line contains ``pattern`` (containerd's shims outlive
    containerd by design: they are re-parented to init), and wait until they are gone."""
    deadline = time.monotonic() + timeout
    while (pids := _matching(pattern)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def _tables(dump: str) -> set[str]:
    return {line[1:].strip() for line in dump.splitlines() if line.startswith("*")}


def _restore_rules(family: str, saved: str) -> None:
    """Put ``family``'s rules back as ``saved`` had them; a table that did not exist then is flushed
    (its chains emptied and its own chains deleted), which is what it held."""
    if not shutil.which(f"{family}-restore"):
        return
    now = _run(f"{family}-save", check=False)
    flush = "".join(f"*{table}\nCOMMIT\n" for table in sorted(_tables(now) - _tables(saved)))
    if saved or flush:
        _run(f"{family}-restore", stdin=saved + flush, check=False)


def rules(family: str = "iptables") -> list[str]:
    """Every rule and every chain of our own, in all tables (no counters, no builtin chains)."""
    found = []
    for line in _run(f"{family}-save", check=False).splitlines():
        if line.startswith("-A"):
            found.append(line)
        elif line.startswith(":") and line[1:].split()[0] not in BUILTIN_CHAINS:
            found.append(line.split()[0])
    return sorted(found)


def _remove_containers(workdir: pathlib.Path) -> None:
    """Force-delete the runc containers whose bundle is under ``workdir`` (a container's processes
    outlive its shim); containers of any other runtime on this machine are left alone."""
    if not RUNC_ROOT.is_dir() or not shutil.which("runc"):
        return
    listed = subprocess.run(
        ["runc", "--root", str(RUNC_ROOT), "list", "--format", "json"], capture_output=True, text=True, check=False
    )
    try:
        containers = json.loads(listed.stdout or "null") or []
    except ValueError:
        return
    for container in containers:
        if str(container.get("bundle", "")).startswith((f"{workdir}/", f"{RUNTIME_DIR}/")):
            subprocess.run(
                ["runc", "--root", str(RUNC_ROOT), "delete", "--force", container["id"]],
                capture_output=True,
                check=False,
            )


def _remove_pod_cgroups() -> None:
    """Remove the kubelet's (empty, once the containers are gone) pod cgroups, deepest first."""
    for controller in CGROUP_ROOT.iterdir() if CGROUP_ROOT.is_dir() else []:
        top = controller / POD_CGROUP
        if not top.is_dir():
            continue
        for folder in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()


def pod_cgroups() -> list[str]:
    return (
        sorted(str(c / POD_CGROUP) for c in CGROUP_ROOT.iterdir() if (c / POD_CGROUP).is_dir())
        if CGROUP_ROOT.is_dir()
        else []
    )


def clear(record: dict[str, object]) -> None:
    """Undo a node's changes from its record: processes and containers, mounts, network namespaces,
    the bridge, the interface, routes, iptables, sysctls and pod cgroups. Safe to run twice."""
    workdir = pathlib.Path(str(record["workdir"]))
    kill_matching(str(workdir))
    kill_matching(str(RUNTIME_DIR))
    _remove_containers(workdir)
    time.sleep(0.2)
    for point in _mounts_under([workdir, RUNTIME_DIR, *FIXED_PATHS]):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    before = set(map(str, record.get("netns", []) or []))  # type: ignore[call-overload]
    for name in sorted(_netns() - before):
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)
    if _link_exists(BRIDGE):
        subprocess.run(["ip", "link", "delete", BRIDGE], capture_output=True, check=False)
    subprocess.run(["ip", "route", "delete", SERVICE_CIDR, "dev", INTERFACE], capture_output=True, check=False)
    if record.get("created_interface") and _link_exists(INTERFACE):
        subprocess.run(["ip", "link", "delete", INTERFACE], capture_output=True, check=False)
    for family in ("iptables", "ip6tables"):
        _restore_rules(family, str(record.get(family) or ""))
    for name, value in dict(record.get("sysctls") or {}).items():  # type: ignore[call-overload]
        with contextlib.suppress(OSError):
            _sysctl_path(name).write_text(str(value))
    existing = set(map(str, record.get("existing_paths", []) or []))  # type: ignore[call-overload]
    for path in FIXED_PATHS:
        if str(path) not in existing:
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_dir():  # keep what was there; drop the links into our pod logs
            for entry in path.iterdir():
                if entry.is_symlink() and str(entry.readlink()).startswith(f"{workdir}/"):
                    entry.unlink()
    _remove_pod_cgroups()
    shutil.rmtree(RUNTIME_DIR, ignore_errors=True)
    RECORD.unlink(missing_ok=True)


NODE_PROCESSES = (
    "containerd",
    "containerd-shim",
    "kubelet",
    "kube-proxy",
    "kube-scheduler",
    "coredns",
    "metrics-server",
)


def _live_processes(names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` run (zombies, dead and only waiting for init to reap them, are not counted)."""
    found = set()
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm, state = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()[0]
        if state != "Z" and any(comm.startswith(name) for name in names):
            found.add(comm)
    return sorted(found)


def host_state() -> dict[str, object]:
    """What a test compares before and after a node: interfaces, netns, mounts, rules and sysctls."""
    return {
        "links": sorted(p.name for p in pathlib.Path("/sys/class/net").iterdir()),
        "routes": sorted(_run("ip", "route", "show").splitlines()),
        "netns": sorted(_netns()),
        "mounts": _mounts_under([*FIXED_PATHS, STATE_DIR]),
        "runtime_dir": RUNTIME_DIR.exists(),
        "iptables": rules("iptables"),
        "ip6tables": rules("ip6tables"),
        "sysctls": {name: _sysctl_path(name).read_text().strip() for name in SYSCTLS if _sysctl_path(name).exists()},
        "cgroups": pod_cgroups(),
        "paths": [str(p) for p in FIXED_PATHS if p.exists()],
        "processes": _live_processes(NODE_PROCESSES),
    }
