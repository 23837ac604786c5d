"""Leader election on a coordination.k8s.io Lease, the way client-go does it.

Only the leader runs Kopf at all, so a standby never watches, writes or posts anything; peering in
Kopf would pause resource handlers but not our periodic resync and scaling loops. Expiry is judged
the client-go way: a lease is free when its record has not changed for ``leaseDurationSeconds`` of
*our* monotonic clock, so clock skew between replicas does not matter.

A leader renews every fifth of the lease and stops leading when it has not renewed for two thirds of
it (client-go's renew deadline), so it has stopped working before a standby can see the lease expire.
No error ends the renewals: an unreachable API server (urllib3's MaxRetryError, a timeout) is logged,
counted in ``wallet_operator_lease_errors_total`` and tried again."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from walletplatform.clients import kube
from walletplatform.controller import metrics
from walletplatform.controller import settings as settings_mod

log = logging.getLogger(__name__)
LEASE = ("coordination.k8s.io/v1", "Lease")


def _micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Lease:
    """``acquire_or_renew()`` is one attempt; the caller loops with ``retry_seconds`` between attempts."""

    def __init__(self, client: kube.Kube, settings: settings_mod.Settings) -> None:
        self.client = client
        self.settings = settings
        self.retry_seconds = settings.lease_seconds / 3  # a standby's attempts
        self.renew_seconds = settings.lease_seconds / 5  # the leader's renewals
        self.renew_deadline = settings.lease_seconds * 2 / 3
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self.renewed_at: float | None = None

    @property
    def is_leader(self) -> bool:
        return self.renewed_at is not None and time.monotonic() - self.renewed_at < self.renew_deadline

    def _spec(self, transitions: int, acquired: str | None) -> dict[str, Any]:
        now = _micro_time()
        return {
            "holderIdentity": self.settings.identity,
            "leaseDurationSeconds": int(self.settings.lease_seconds),
            "acquireTime": acquired or now,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    def acquire_or_renew(self) -> bool:
        name, namespace = self.settings.lease_name, self.settings.lease_namespace
        try:
            lease = self.client.get(*LEASE, name, namespace)
            if lease is None:
                self.client.create(
                    {
                        "apiVersion": LEASE[0],
                        "kind": LEASE[1],
                        "metadata": {"name": name, "namespace": namespace},
                        "spec": self._spec(0, None),
                    }
                )
                return self._won()
            spec = lease.get("spec") or {}
            holder = spec.get("holderIdentity")
            record = (holder, spec.get("renewTime"), spec.get("leaseDurationSeconds"))
            if record != self._observed:
                self._observed, self._observed_at = record, time.monotonic()
            duration = float(spec.get("leaseDurationSeconds") or self.settings.lease_seconds)
            expired = time.monotonic() - self._observed_at >= duration
            if holder and holder != self.settings.identity and not expired:
                if self.renewed_at is not None:
                    log.error("the lease is held by %s: stepping down", holder)
                    self.renewed_at = None
                return self._lost()
            transitions = int(spec.get("leaseTransitions") or 0)
            mine = holder == self.settings.identity
            lease["spec"] = self._spec(
                transitions if mine else transitions + 1, spec.get("acquireTime") if mine else None
            )
            self.client.replace(lease)
            return self._won()
        except kube.ApiError as exc:
            metrics.LEASE_ERRORS.labels("api").inc()
            log.info("lease %s/%s not taken: %s", namespace, name, exc.message)
            return self._lost()
        except Exception as exc:  # the API server unreachable, a timeout, a bad answer: try again later
            metrics.LEASE_ERRORS.labels(type(exc).__name__).inc()
            log.warning("lease %s/%s: %s: %s", namespace, name, type(exc).__name__, str(exc)[:200])
            return self._lost()

    def _won(self) -> bool:
        if not self.is_leader:
            log.info("became leader (%s)", self.settings.identity)
        self.renewed_at = time.monotonic()
        metrics.LEADER.set(1)
        return True

    def _lost(self) -> bool:
        metrics.LEADER.set(1 if self.is_leader else 0)
        return self.is_leader

    def wait_until_leader(self, stop: Any) -> bool:
        """Block until this process holds the lease (True) or ``stop`` (a threading.Event) is set (False)."""
        while not stop.is_set():
            if self.acquire_or_renew():
                return True
            stop.wait(self.retry_seconds)
        return False

    def release(self) -> None:
        """Give the lease up on a clean shutdown so the standby takes over at once."""
        if not self.is_leader:
            return
        self.renewed_at = None
        metrics.LEADER.set(0)
        try:
            lease = self.client.get(*LEASE, self.settings.lease_name, self.settings.lease_namespace)
            if lease and (lease.get("spec") or {}).get("holderIdentity") == self.settings.identity:
                lease["spec"]["holderIdentity"] = None
                lease["spec"]["leaseDurationSeconds"] = 1
                self.client.replace(lease)
                log.info("released the leader lease")
        except Exception as exc:  # shutting down: the lease then expires on its own
            log.info("could not release the lease: %s: %s", type(exc).__name__, str(exc)[:200])
