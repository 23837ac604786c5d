"""A faithful simulation of the HorizontalPodAutoscaler controller (autoscaling/v2), for backtests.

Per 15 s sync: utilisation from metrics one scrape stale, the 10% tolerance, not-yet-ready pods
counted at zero usage when scaling up, the stabilisation windows (min of recommendations for scale
up, max for scale down), the behaviour's rate-limit policies per period with selectPolicy, then the
clamp to [minReplicas, maxReplicas] (a raised minReplicas applies at once). Pods are ready after
start-up; on scale-down, pods that are not ready go first.

Made for replays of millions of syncs: pods are kept sorted by when they become ready, and each
stabilisation window keeps only the recommendations that can still be its extreme (a monotonic
queue), so a sync costs the same whatever the windows' lengths. While every pod is ready, the count
stays where it is through every sync whose scale-up window still holds a recommendation at or below
it and whose scale-down window one at or above it (under a minReplicas no higher): ``quiet_syncs``
finds, for a run of recommendations made all at once (``raw_desired``), how many syncs that lasts,
and ``pass_quiet`` leaves the windows as those syncs would have."""

from __future__ import annotations

import bisect
import collections
import dataclasses
import math

import numpy as np
import numpy.typing as npt

from walletplatform.forecast import series
from walletplatform.models import service

TOLERANCE = 0.1
SYNC = 15.0
MAX_PERIOD = 1800.0  # the API's bound on a scaling policy's periodSeconds


@dataclasses.dataclass
class HpaSimulator:
    behavior: service.Behavior
    max_replicas: int
    target: float
    capacity: float
    startup: float
    replicas: int = 1
    pods: list[float] = dataclasses.field(default_factory=list)  # when each pod is ready, ascending
    # (time, recommendation): the candidates for the scale-up window's minimum and the scale-down window's maximum
    lows: collections.deque[tuple[float, int]] = dataclasses.field(default_factory=collections.deque)
    highs: collections.deque[tuple[float, int]] = dataclasses.field(default_factory=collections.deque)
    events: collections.deque[tuple[float, int]] = dataclasses.field(default_factory=collections.deque)
    actions: int = 0

    def __post_init__(self) -> None:
        self.pods = [-math.inf] * self.replicas
        self._up_window = float(self.behavior.scale_up.stabilization_window_seconds)
        self._down_window = float(self.behavior.scale_down.stabilization_window_seconds)
        self._quiet_limits: dict[tuple[bool, int], int] = {}

    def ready(self, now: float) -> int:
        return bisect.bisect_right(self.pods, now)

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
        if self.events and now - self.events[-1][0] < MAX_PERIOD:
            return self._policy_limit(now, up)
        return self._settled_limit(up)

    def _settled_limit(self, up: bool) -> int:
        """The limit with no change within any period: every policy starts from the current count, so it
        is the same whenever the count is (a service held where 10% of it rounds to no pod, for hours)."""
        key = (up, self.replicas)
        if key not in self._quiet_limits:
            self._quiet_limits[key] = self._policy_limit(math.inf, up)  # no change within a period
        return self._quiet_limits[key]

    def _policy_limit(self, now: float, up: bool) -> int:
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

    def all_ready(self, now: float) -> bool:
        return not self.pods or self.pods[-1] <= now

    def quiet_syncs(self, start: float, desired: npt.NDArray[np.int64], floors: npt.NDArray[np.int64]) -> int:
        """How many of the syncs at ``start``, ``start + SYNC``, ... leave the count as it is, when they
        recommend ``desired`` (``raw_desired`` with every pod ready, as they stay) under minReplicas
        ``floors``. A sync leaves it when no floor is above it and the windows' recommendation is the
        count (the scale-up window holds a recommendation at or below it, the scale-down window one at
        or above it, their own entries included), or the change is clamped or rate-limited back to it:
        up at maxReplicas, down at a floor of the count, either way where a policy allows no pod
        without a recent change. Times are whole seconds, so the windows' arithmetic is exact."""
        replicas, count = self.replicas, len(desired)
        if replicas > self.max_replicas:
            return 0
        index = np.arange(count)
        times = start + SYNC * index
        quiet = floors <= replicas
        last_change = self.events[-1][0] if self.events else -math.inf
        unlimited = times - last_change >= MAX_PERIOD  # where the rate limits start from the count
        below = [at for at, value in self.lows if value <= replicas]
        above = [at for at, value in self.highs if value >= replicas]
        for up, before, window, side in (
            (True, below, self._up_window, desired <= replicas),
            (False, above, self._down_window, desired >= replicas),
        ):
            latest = np.maximum.accumulate(np.where(side, index, -1))  # the last of these syncs on that side
            held = (latest >= 0) & ((index - latest) * SYNC <= window)
            if before:  # or an entry the window holds now
                held |= times - before[-1] <= window
            if self._settled_limit(up) == replicas:
                held |= unlimited
            held |= replicas == self.max_replicas if up else floors == replicas
            quiet &= held
        loud = np.flatnonzero(~quiet)
        return int(loud[0]) if loud.size else count

    def pass_quiet(self, start: float, desired: npt.NDArray[np.int64]) -> None:
        """Leave the windows as the quiet syncs from ``start`` recommending ``desired`` would have (only
        the ones still inside a window at the last of them can be in it)."""
        reach = max(self._up_window, self._down_window)
        first = max(0, len(desired) - 1 - int(reach // SYNC))
        for k, value in enumerate(desired[first:].tolist(), start=first):
            self._record(start + SYNC * k, value)

    def _record(self, now: float, desired: int) -> None:
        """Put a recommendation in both windows and drop what it makes stale or outranks."""
        lows, highs = self.lows, self.highs
        while lows and lows[-1][1] >= desired:
            lows.pop()
        lows.append((now, desired))
        while now - lows[0][0] > self._up_window:
            lows.popleft()
        while highs and highs[-1][1] <= desired:
            highs.pop()
        highs.append((now, desired))
        while now - highs[0][0] > self._down_window:
            highs.popleft()

    def sync(self, now: float, demand: float, min_replicas: int) -> None:
        """One HPA sync at ``now`` with the (stale) demand the metrics pipeline reports."""
        desired = self._raw_desired(now, demand)
        lows, highs = self.lows, self.highs
        replicas = self.replicas
        if (
            desired == replicas
            and len(lows) == 1 == len(highs)
            and lows[0][1] == replicas == highs[0][1]
            and min_replicas <= replicas <= self.max_replicas
        ):
            # Settled: both windows hold only this count and so does the new recommendation: no change.
            lows[0] = highs[0] = (now, desired)
            return
        self._record(now, desired)
        result = min(max(replicas, lows[0][1]), highs[0][1])
        if result > replicas:
            result = min(result, self._limit(now, up=True))
        elif result < replicas:
            result = max(result, self._limit(now, up=False))
        result = max(min_replicas, min(self.max_replicas, result))
        self._scale(now, result)

    def _scale(self, now: float, replicas: int) -> None:
        delta = replicas - self.replicas
        if delta == 0:
            return
        self.actions += 1
        while self.events and now - self.events[0][0] > MAX_PERIOD:
            self.events.popleft()
        self.events.append((now, delta))
        if delta > 0:
            self.pods += [now + self.startup] * delta
            self.pods.sort()  # already in order when syncs come in time order
        else:
            del self.pods[replicas:]  # ready (earliest) first; remove the latest, i.e. the unready ones
        self.replicas = replicas


def raw_desired(demand: series.Array, replicas: int, capacity: float, target: float) -> npt.NDArray[np.int64]:
    """What each sync reading ``demand`` recommends with all of ``replicas`` pods ready: the arithmetic of
    ``_raw_desired`` (ready == replicas), element-wise and in the same order of operations."""
    if replicas == 0:
        return np.zeros(demand.shape, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        ratio = demand / capacity / replicas / target
        hold = np.isnan(demand) | (np.abs(ratio - 1) <= TOLERANCE)
        moved = np.ceil(np.where(hold, 1.0, ratio) * replicas)
    desired: npt.NDArray[np.int64] = np.where(hold, replicas, moved).astype(np.int64)
    return desired
