"""Kubernetes Events about our custom resources. Events expire (one hour by default), so everything
that matters is also kept in status; an Event that cannot be posted is logged, never fatal."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Literal

from walletplatform.clients import kube
from walletplatform.controller import settings
from walletplatform.models import common

log = logging.getLogger(__name__)
MAX_MESSAGE = 1000


EventType = Literal["Normal", "Warning"]


def post_event(client: kube.Kube, body: dict[str, Any], kind: EventType, reason: str, message: str) -> None:
    meta = body["metadata"]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event: common.Manifest = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": body["apiVersion"],
            "kind": body["kind"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
        },
        "type": kind,
        "reason": reason,
        "message": message[:MAX_MESSAGE],
        "source": {"component": settings.OPERATOR_MANAGER},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        client.create(event)
    except kube.ApiError as exc:
        log.warning("could not post event %s on %s/%s: %s", reason, meta["namespace"], meta["name"], exc.message)
