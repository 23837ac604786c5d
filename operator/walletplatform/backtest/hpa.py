"""A faithful simulation of the HorizontalPodAutoscaler controller (autoscaling/v2), for backtests.

Per 15 s sync: utilisation from metrics one scrape stale, the 10% tolerance, not-yet-ready pods
counted at zero usage when scaling up, the stabilisation windows (min of recommendations for scale
up, max for scale down), the behaviour's rate-limit policies per period with selectPolicy, then the
clamp to [minReplicas, maxReplicas] (a raised minReplicas applies at once). Pods are ready after
start-up; on scale-down, pods that are not ready go first."""

from __future__ import annotations

import collections
import dataclasses
import math

from walletplatform.models import service

TOLERANCE = 0.1
SYNC = 15.0


@dataclasses.dataclass
class HpaSimulator:
    behavior: service.Behavior
    max_replicas: int
    target: float
    capacity: float
    startup: float
    replicas: int = 1
    pods: list[float] = dataclasses.field(default_factory=list)
    recommendations: collections.deque[tuple[float, int]] = dataclasses.field(default_factory=collections.deque)
    events: collections.deque[tuple[float, int]] = dataclasses.field(default_factory=collections.deque)
    actions: int = 0

    def __post_init__(self) -> None:
        self.pods = [-math.inf] * self.replicas

    def ready(self, now: float) -> int:
        return sum(1 for ready_at in self.pods if ready_at <= now)

    def _raw_desired(self, now: float, demand: float) -> int:
        ready = self.ready(now)
        if ready == 0 or math.isnan(demand):
            return self.replicas
        usage = demand / self.capacity  # pods' worth of work at 100%
        ratio = usage / ready / self.target
        if abs(ratio - 1) <= TOLERANCE:
            return self.replicas
        if ratio > 1 and self.replicas > ready:
            ratio = usage / self.replicas / self.target  # unready pods count as idle when scaling up
            if ratio <= 1 + TOLERANCE:
                return self.replicas
            return math.ceil(ratio * self.replicas)
        return math.ceil(ratio * ready)

    def _period_start(self, now: float, period: float) -> int:
        change = sum(delta for at, delta in self.events if now - at < period)
        return self.replicas - change

    def _limit(self, now: float, up: bool) -> int:
        direction = self.behavior.scale_up if up else self.behavior.scale_down
        limits = []
        for policy in direction.policies:
            start = self._period_start(now, policy.period_seconds)
            if policy.type == service.PolicyType.PODS:
                limits.append(start + policy.value if up else start - policy.value)
            elif up:
                limits.append(math.ceil(start * (1 + policy.value / 100)))
            else:
                limits.append(math.ceil(start * (1 - policy.value / 100)))
        if direction.select_policy == service.SelectPolicy.DISABLED:
            return self.replicas
        most_change = max if up else min
        least_change = min if up else max
        return (most_change if direction.select_policy == service.SelectPolicy.MAX else least_change)(limits)

    def sync(self, now: float, demand: float, min_replicas: int) -> None:
        """One HPA sync at ``now`` with the (stale) demand the metrics pipeline reports."""
        desired = self._raw_desired(now, demand)
        self.recommendations.append((now, desired))
        longest = max(
            self.behavior.scale_up.stabilization_window_seconds, self.behavior.scale_down.stabilization_window_seconds
        )
        while self.recommendations and now - self.recommendations[0][0] > longest:
            self.recommendations.popleft()
        while self.events and now - self.events[0][0] > 1800:
            self.events.popleft()
        up_window = self.behavior.scale_up.stabilization_window_seconds
        down_window = self.behavior.scale_down.stabilization_window_seconds
        up_rec = min(r for at, r in self.recommendations if now - at <= up_window)
        down_rec = max(r for at, r in self.recommendations if now - at <= down_window)
        result = self.replicas
        result = max(result, up_rec)
        result = min(result, down_rec)
        if result > self.replicas:
            result = min(result, self._limit(now, up=True))
        elif result < self.replicas:
            result = max(result, self._limit(now, up=False))
        result = max(min_replicas, min(self.max_replicas, result))
        self._scale(now, result)

    def _scale(self, now: float, replicas: int) -> None:
        delta = replicas - self.replicas
        if delta == 0:
            return
        self.actions += 1
        self.events.append((now, delta))
        if delta > 0:
            self.pods += [now + self.startup] * delta
        else:
            self.pods.sort()  # ready (earliest) first; remove the latest, i.e. the unready ones
            del self.pods[replicas:]
        self.replicas = replicas
