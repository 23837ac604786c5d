"""Persistent volumes for the local node: a default StorageClass and a small provisioner that gives
each of its pending claims a ``local`` PersistentVolume (a folder under the node's work folder, pinned
to the node), and deletes the folder and the volume once a claim with reclaim policy Delete is gone.

It stands where a cloud's CSI driver (or rancher's local-path-provisioner) stands in a real cluster:
the data tier's operators create claims (CloudNativePG per instance, redis-operator per StatefulSet
pod) and the node has to bind them. ``local`` volumes, unlike ``hostPath``, get the pod's fsGroup, so
Postgres (26) and Redis (1000) own their data folders without running as root."""

from __future__ import annotations

import logging
import pathlib
import shutil
import threading
from typing import Any

from walletplatform.clients import kube
from walletplatform.devenv import kubelet

log = logging.getLogger(__name__)
CLASS_NAME = "wallet-local"
PROVISIONER = "wallet.platform.io/local"
MANAGER = "wallet-devenv"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"


def storage_class() -> dict[str, Any]:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": CLASS_NAME,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    }


def volume_for(claim: dict[str, Any], root: pathlib.Path) -> dict[str, Any]:
    """The PersistentVolume that binds ``claim`` (pre-bound through claimRef), at a folder of its own."""
    meta, spec = claim["metadata"], claim["spec"]
    name = f"pvc-{meta['uid']}"
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "annotations": {PROVISIONED_BY: PROVISIONER}},
        "spec": {
            "capacity": {"storage": spec["resources"]["requests"]["storage"]},
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": CLASS_NAME,
            "volumeMode": "Filesystem",
            "local": {"path": str(root / name)},
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "kubernetes.io/hostname", "operator": "In", "values": [kubelet.NODE_NAME]}
                            ]
                        }
                    ]
                }
            },
        },
    }


class Provisioner:
    """Polls claims and volumes once a second in a thread; ``stop()`` ends it (volumes stay on disk
    until the node's work folder goes)."""

    def __init__(self, client: kube.Kube, root: pathlib.Path, period: float = 1.0) -> None:
        self.client = client
        self.root = root
        self.period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="volume-provisioner", daemon=True)
        self.errors = 0

    def start(self) -> Provisioner:
        self.root.mkdir(parents=True, exist_ok=True)
        self.client.apply(storage_class(), MANAGER)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.pass_once()
            except Exception as exc:  # a failed pass is retried at the next one
                self.errors += 1
                log.warning("volume provisioner: %s", exc)

    def pass_once(self) -> None:
        for claim in self.client.list("v1", "PersistentVolumeClaim"):
            spec, status = claim["spec"], claim.get("status") or {}
            pending = status.get("phase") == "Pending" and not spec.get("volumeName")
            if spec.get("storageClassName") == CLASS_NAME and pending:
                self._provision(claim)
        for volume in self.client.list("v1", "PersistentVolume"):
            annotations = volume["metadata"].get("annotations") or {}
            phase = (volume.get("status") or {}).get("phase")
            if annotations.get(PROVISIONED_BY) == PROVISIONER and phase in ("Released", "Failed"):
                self._reclaim(volume)

    def _provision(self, claim: dict[str, Any]) -> None:
        volume = volume_for(claim, self.root)
        folder = pathlib.Path(volume["spec"]["local"]["path"])
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o777)  # the pod's fsGroup takes it over when the kubelet mounts it
        try:
            self.client.create(volume)
        except kube.ApiError as exc:
            if exc.status != 409:
                raise
            return
        log.info("volume provisioner: %s for %s/%s", volume["metadata"]["name"],
                 claim["metadata"]["namespace"], claim["metadata"]["name"])  # fmt: skip

    def _reclaim(self, volume: dict[str, Any]) -> None:
        local = volume["spec"].get("local") or {}
        path = pathlib.Path(local.get("path", ""))
        if path.parent == self.root:
            shutil.rmtree(path, ignore_errors=True)
        self.client.delete("v1", "PersistentVolume", volume["metadata"]["name"])
