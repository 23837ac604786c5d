"""The scaling engine's adapter: every ScalingPolicy is decided every ``spec.interval`` (60 s default).

Per policy and refresh (``spec.predictive.refresh``, 10 min default) it makes one history query to
Prometheus and caches the forecast between decisions. Per service it reads the HPA, calls the pure
``decide`` and, in Auto mode, writes ``minReplicas`` with server-side apply under the field manager
``wallet-scaler`` (the field's only owner: the platform reconcile never writes it for a service a policy
in Auto or Paused mode governs). Status explains every decision and is written only when the
explanation changed; an Event is posted when a floor changes and when Prometheus trouble starts or
ends. Nothing here raises on Prometheus trouble: it becomes a named ``Trouble`` the engine handles."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from walletplatform import catalog, rules
from walletplatform.clients import kube
from walletplatform.clients import prometheus as prometheus_client
from walletplatform.controller import children, events, handlers, metrics
from walletplatform.controller import settings as settings_mod
from walletplatform.forecast import registry
from walletplatform.models import common, errors, platform, resources, scaling
from walletplatform.reconcile import status
from walletplatform.render import autoscaling, labels
from walletplatform.scaling import decide, demand, predictive, report

log = logging.getLogger(__name__)
API = handlers.API
TICK_SECONDS = 5.0
Outlook = predictive.Outlook | demand.Trouble | None


@dataclasses.dataclass
class Cached:
    outlook: predictive.Outlook
    query: str
    fetched_at: float


class Engine:
    """State kept between cycles: each service's Memory and each policy's cached forecast."""

    def __init__(
        self,
        client: kube.Kube,
        cat: catalog.Catalog,
        settings: settings_mod.Settings,
        cache: children.ChildCache | None = None,
    ) -> None:
        self.client = client
        self.cache = cache  # the policies come from its watch once it has listed them
        self.catalog = cat
        self.settings = settings
        self.memories: dict[tuple[str, str, str], decide.Memory] = {}
        self.forecasts: dict[tuple[str, str], Cached] = {}
        self.last_run: dict[tuple[str, str], float] = {}
        self.prometheus: dict[tuple[str, prometheus_client.Credentials | None], prometheus_client.Prometheus] = {}

    def _policies(self) -> list[dict[str, Any]]:
        if self.cache is not None and self.cache.synced():
            return self.cache.policies()
        return [
            body for ns in self.settings.namespaces or (None,) for body in self.client.list(API, "ScalingPolicy", ns)
        ]

    def tick(self, now: datetime) -> None:
        """Decide every policy that is due; one policy's failure never stops the others."""
        for body in self._policies():
            key = (body["metadata"]["namespace"], body["metadata"]["name"])
            interval = _interval(body)
            if now.timestamp() - self.last_run.get(key, 0.0) < interval:
                continue
            try:
                if self.run_policy(body, now):
                    self.last_run[key] = now.timestamp()
            except kube.ApiError as exc:
                self.last_run[key] = now.timestamp()
                log.warning("scaling %s/%s: %s", key[0], key[1], exc.message)
            except Exception as exc:  # one policy's failure is its own: the others are still decided
                self.last_run[key] = now.timestamp()
                metrics.LOOP_ERRORS.labels("scaling-policy").inc()
                log.exception("scaling %s/%s failed", key[0], key[1])
                self._report_failure(body, f"{type(exc).__name__}: {str(exc)[:300]}", now)

    def _outlook(
        self, key: tuple[str, str], spec: scaling.ScalingPolicySpec, monitoring: platform.Monitoring, now: datetime
    ) -> Outlook:
        pred = spec.predictive
        if pred is None or not pred.enabled:
            return None
        url = monitoring.prometheus_url
        if url is None:
            return demand.Trouble("unavailable", "the platform sets no spec.monitoring.prometheusUrl")
        cached = self.forecasts.get(key)
        if cached and cached.query == pred.query and now.timestamp() - cached.fetched_at < pred.refresh.total_seconds():
            return cached.outlook
        credentials = self._credentials(key[0], monitoring.prometheus_credentials)
        if isinstance(credentials, demand.Trouble):
            metrics.PROMETHEUS_TROUBLE.labels(credentials.kind).inc()
            return credentials
        # One client per URL and credentials: a rotated Secret gets a new client at the next refresh.
        client = self.prometheus.setdefault(
            (url, credentials), prometheus_client.Prometheus(url, self.settings.prometheus_timeout_seconds, credentials)
        )
        history = client.fetch_history(
            pred.query, pred.lookback.total_seconds(), pred.step.total_seconds(), now.timestamp()
        )
        if isinstance(history, demand.Trouble):
            metrics.PROMETHEUS_TROUBLE.labels(history.kind).inc()
            return history
        previous = cached.outlook if cached and cached.query == pred.query else None
        outlook = predictive.build_outlook(
            pred, registry.FORECASTERS[pred.forecaster], history, now.timestamp(), previous
        )
        self.forecasts[key] = Cached(outlook, pred.query, now.timestamp())
        return outlook

    def _credentials(
        self, namespace: str, ref: platform.PrometheusCredentials | None
    ) -> prometheus_client.Credentials | demand.Trouble | None:
        """The credentials ``ref`` names, read from its Secret now; a Trouble naming the Secret and key
        (never a value) when they cannot be read."""
        if ref is None:
            return None
        try:
            secret = self.client.get("v1", "Secret", ref.secret_name, namespace)
        except kube.ApiError as exc:
            return demand.Trouble("error", f"Secret {ref.secret_name} of prometheusCredentials: HTTP {exc.status}")
        if secret is None:
            return demand.Trouble("error", f"Secret {ref.secret_name} of prometheusCredentials does not exist")
        data = secret.get("data") or {}
        values: dict[str, str] = {}
        for field, key in (("token", ref.token_key), ("username", ref.username_key), ("password", ref.password_key)):
            if key is None:
                continue
            try:
                values[field] = base64.b64decode(data[key]).decode()
            except (KeyError, ValueError, TypeError):
                return demand.Trouble("error", f"Secret {ref.secret_name} has no readable key {key!r}")
        return prometheus_client.Credentials(**values)

    def run_policy(self, body: dict[str, Any], now: datetime) -> bool:
        """Decide one policy; False when a service's HPA does not exist yet (retry at the next tick)."""
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        previous = status.parse_status(scaling.ScalingPolicyStatus, body.get("status"))
        try:
            spec = resources.parse_spec(scaling.ScalingPolicySpec, body.get("spec"))
        except errors.SpecError as exc:
            self._invalid(body, previous, "InvalidSpec", "; ".join(map(str, exc.problems)), now)
            return True
        platform_body = self.client.get(API, "WalletPlatform", spec.platform_ref, namespace)
        if platform_body is None:
            message = f"spec.platformRef: WalletPlatform {spec.platform_ref!r} does not exist in {namespace}"
            self._invalid(body, previous, "PlatformNotFound", message, now)
            return True
        try:
            platform_spec = resources.parse_spec(platform.WalletPlatformSpec, platform_body.get("spec"))
            resolved = catalog.resolve(spec.platform_ref, namespace, platform_spec, self.catalog)
        except errors.SpecError as exc:
            message = f"WalletPlatform {spec.platform_ref} is invalid: " + "; ".join(map(str, exc.problems))
            self._invalid(body, previous, "PlatformInvalid", message, now)
            return True
        problems = rules.check_policy(spec, resolved, self.catalog)
        if problems:
            self._invalid(body, previous, "UnknownService", "; ".join(map(str, problems)), now)
            return True

        outlook = self._outlook((namespace, name), spec, platform_spec.monitoring, now)
        old = {s.service: s for s in (previous.services if previous else [])}
        entries: list[scaling.ServiceScalingStatus] = []
        for service in spec.services:
            entry = self._decide_service(
                body, spec=spec, resolved=resolved, service=service, outlook=outlook, previous=old.get(service), now=now
            )
            if entry is not None:
                entries.append(entry)
        trouble = outlook if isinstance(outlook, demand.Trouble) else None
        healthy = platform.Condition(
            type="PrometheusHealthy",
            status=platform.ConditionStatus.FALSE if trouble else platform.ConditionStatus.TRUE,
            reason=_camel(trouble.kind) if trouble else ("QueryOk" if outlook is not None else "NotUsed"),
            message=str(trouble) if trouble else ("demand history usable" if outlook is not None else "no predictive"),
            observed_generation=meta.get("generation"),
        )
        valid = platform.Condition(
            type="Valid",
            status=platform.ConditionStatus.TRUE,
            reason="Valid",
            message=f"governs {', '.join(spec.services)} of WalletPlatform {spec.platform_ref}",
            observed_generation=meta.get("generation"),
        )
        was_healthy = _condition(previous, "PrometheusHealthy")
        if was_healthy is not None and was_healthy.status != healthy.status:
            kind: events.EventType = "Warning" if trouble else "Normal"
            events.post_event(
                self.client, body, kind, "PrometheusTrouble" if trouble else "PrometheusRecovered", healthy.message
            )
        self._write_status(body, previous, mode=spec.mode.value, conditions=[valid, healthy], entries=entries, now=now)
        return len(entries) == len(spec.services)

    def _decide_service(
        self,
        body: dict[str, Any],
        *,
        spec: scaling.ScalingPolicySpec,
        resolved: catalog.ResolvedPlatform,
        service: str,
        outlook: Outlook,
        previous: scaling.ServiceScalingStatus | None,
        now: datetime,
    ) -> scaling.ServiceScalingStatus | None:
        namespace, policy = body["metadata"]["namespace"], body["metadata"]["name"]
        hpa_name = labels.service_name(resolved.name, service)
        hpa = self.client.get("autoscaling/v2", "HorizontalPodAutoscaler", hpa_name, namespace)
        if hpa is None:
            return None  # the platform reconcile has not created it yet; next cycle
        hpa_spec, hpa_status = hpa.get("spec") or {}, hpa.get("status") or {}
        state = decide.ServiceState(
            service=service,
            static_min=resolved.definition(service).min_replicas,
            max_replicas=int(hpa_spec.get("maxReplicas") or resolved.definition(service).max_replicas),
            current_floor=hpa_spec.get("minReplicas"),
            current_replicas=hpa_status.get("currentReplicas"),
        )
        key = (namespace, policy, service)
        memory = self.memories.get(key) or report.memory_from_status(previous)
        decision = decide.decide(spec, state, outlook, now, memory)
        self.memories[key] = decision.memory
        labels_ = (namespace, policy, service)
        metrics.SCALING_DECISIONS.labels(decision.source).inc()
        metrics.SCALING_FLOOR.labels(*labels_).set(decision.floor)
        if decision.forecast is not None and decision.forecast.peak is not None:
            metrics.FORECAST_DEMAND.labels(*labels_).set(decision.forecast.peak)
        if decision.forecast is not None and decision.forecast.error_ratio is not None:
            metrics.FORECAST_ERROR_RATIO.labels(*labels_).set(decision.forecast.error_ratio)
        entry = report.render_service_status(decision)
        if decision.apply and state.current_floor != decision.floor:
            self.client.apply(
                autoscaling.render_floor(hpa_name, namespace, decision.floor), settings_mod.SCALER_MANAGER
            )
            message = f"{service}: minReplicas {state.current_floor} -> {decision.floor} ({decision.source}); " + (
                "; ".join(decision.reasons)
            )
            events.post_event(self.client, body, "Normal", "FloorChanged", message)
            log.info("scaling %s/%s %s", namespace, policy, message)
        elif previous is not None and previous.floor == entry.floor and previous.decided_at:
            entry = entry.model_copy(update={"decided_at": previous.decided_at})
        return entry

    def _write_status(
        self,
        body: dict[str, Any],
        previous: scaling.ScalingPolicyStatus | None,
        *,
        mode: str,
        conditions: list[platform.Condition],
        entries: list[scaling.ServiceScalingStatus],
        now: datetime,
    ) -> None:
        meta = body["metadata"]
        stamped = status.stamp_transitions(conditions, previous.conditions if previous else [], now)
        new = scaling.ScalingPolicyStatus(
            observed_generation=meta.get("generation"),
            mode=mode,
            conditions=stamped,
            services=entries,
            last_decision=now.replace(microsecond=0),
        )
        if previous is not None and (
            previous.mode,
            previous.observed_generation,
            [c.model_dump(exclude={"last_transition_time"}) for c in previous.conditions],
            report.without_times(previous.services),
        ) == (
            new.mode,
            new.observed_generation,
            [c.model_dump(exclude={"last_transition_time"}) for c in new.conditions],
            report.without_times(new.services),
        ):
            return
        wanted = new.model_dump(mode="json", by_alias=True, exclude_none=True)
        self.client.merge_status(body, wanted)

    def _report_failure(self, body: dict[str, Any], message: str, now: datetime) -> None:
        """The policy's own condition and event say its decision failed (best effort: the API may be down)."""
        try:
            previous = status.parse_status(scaling.ScalingPolicyStatus, body.get("status"))
            self._invalid(body, previous, "DecisionFailed", message, now)
        except Exception:
            log.exception("could not report the failure of %s", body["metadata"].get("name"))

    def _invalid(
        self,
        body: dict[str, Any],
        previous: scaling.ScalingPolicyStatus | None,
        reason: str,
        message: str,
        now: datetime,
    ) -> None:
        condition = platform.Condition(
            type="Valid",
            status=platform.ConditionStatus.FALSE,
            reason=reason,
            message=message,
            observed_generation=body["metadata"].get("generation"),
        )
        old = _condition(previous, "Valid")
        if old is None or (old.status, old.message) != (condition.status, condition.message):
            events.post_event(self.client, body, "Warning", reason, message)
        mode = str((body.get("spec") or {}).get("mode", ""))
        self._write_status(body, previous, mode=mode, conditions=[condition], entries=[], now=now)


def _condition(current: scaling.ScalingPolicyStatus | None, kind: str) -> platform.Condition | None:
    return next((c for c in current.conditions if c.type == kind), None) if current else None


DEFAULT_INTERVAL = 60.0


def _interval(body: dict[str, Any]) -> float:
    """The policy's decision interval, read before full validation (an invalid policy is still reported)."""
    raw = (body.get("spec") or {}).get("interval")
    try:
        return DEFAULT_INTERVAL if raw is None else common.parse_duration(raw).total_seconds()
    except (ValueError, OverflowError):
        return DEFAULT_INTERVAL


def _camel(kind: str) -> str:
    return "Prometheus" + kind.capitalize()


async def scaling_loop(memo: handlers.Memo, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
    """Started by the operator on Kopf start-up (leader only): ticks every few seconds."""
    engine = Engine(memo.client, memo.catalog, memo.settings, memo.cache)

    async def tick() -> None:
        await asyncio.to_thread(engine.tick, clock())

    await handlers.guarded_loop(memo, "scaling", TICK_SECONDS, tick)
