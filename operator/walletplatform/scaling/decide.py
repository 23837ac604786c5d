"""One scaling decision for one service:

    floor = clamp(max(static minimum, active schedule floors, predictive floor, active override),
                  minReplicas, maxReplicas)

then stepped down gradually (a falling minReplicas is not protected by the HPA's scale-down
stabilisation), held or fallen back when Prometheus is in trouble, and gated by the policy's mode."""

from __future__ import annotations

import dataclasses
import typing
from datetime import UTC, datetime

from walletplatform.models import scaling
from walletplatform.scaling import demand, predictive, schedule

SOURCES_BY_PRIORITY = ("override", "schedule", "predictive", "static")


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceState:
    """Live state of one service, read by the adapter from the HPA and Deployment."""

    service: str
    static_min: int
    max_replicas: int
    current_floor: int | None = None
    current_replicas: int | None = None


class Memory(typing.NamedTuple):
    """What the engine remembers between decisions (kept in the ScalingPolicy's status). The engine's
    value objects made once a decision are named tuples: a backtest makes hundreds of thousands, and a
    tuple is made several times faster than a frozen dataclass."""

    floor: int | None = None
    decided_at: datetime | None = None
    last_good_floor: int | None = None
    last_good_at: datetime | None = None


FRESH = Memory()  # a service the engine has not decided before


class Decision(typing.NamedTuple):
    service: str
    floor: int
    desired: int
    source: str
    reasons: tuple[str, ...]
    apply: bool
    memory: Memory
    forecast: predictive.Forecast | None = None
    trouble: demand.Trouble | None = None

    @property
    def changed(self) -> bool:
        return self.apply and self.memory.floor != self.floor


def _override(policy: scaling.ScalingPolicySpec, service: str, now: datetime) -> tuple[int, str | None]:
    active = [o for o in policy.overrides if o.service == service and o.expires > now]
    if not active:
        return 0, None
    best = max(active, key=lambda o: o.floor)
    until = best.expires.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
    return best.floor, f"override {best.floor} until {until}" + (f" ({best.reason})" if best.reason else "")


def _step_down(
    policy: scaling.ScalingPolicySpec,
    desired: int,
    previous: int | None,
    *,
    memory: Memory,
    now: datetime,
    reasons: list[str],
) -> int:
    """Approach a lower floor by at most stepDownPerMinute per elapsed minute; rise at once."""
    if previous is None or desired >= previous:
        return desired
    minutes = 1
    if memory.decided_at is not None:
        minutes = max(1, int((now - memory.decided_at).total_seconds() // 60))
    result = max(desired, previous - policy.step_down_per_minute * minutes)
    if result != desired:
        reasons.append(f"stepping down from {previous} towards {desired} by {policy.step_down_per_minute}/min")
    return result


def decide(
    policy: scaling.ScalingPolicySpec,
    state: ServiceState,
    outlook: predictive.Outlook | demand.Trouble | None,
    now: datetime,
    memory: Memory = FRESH,
) -> Decision:
    """Decide the floor of one service at ``now``; ``outlook`` is None when the policy has no predictive part."""
    low = policy.bounds.min_replicas if policy.bounds.min_replicas is not None else state.static_min
    high = min(state.max_replicas, policy.bounds.max_replicas or state.max_replicas)
    reasons = [f"static minimum {low}"]
    inputs: dict[str, int] = {"static": low}

    floor, name = schedule.schedule_floor(policy, now, policy.schedule_lead)
    if name:
        inputs["schedule"] = floor
        reasons.append(f"schedule {name}: {floor}")
    floor, text = _override(policy, state.service, now)
    if text:
        inputs["override"] = floor
        reasons.append(text)

    forecast = None
    trouble = outlook if isinstance(outlook, demand.Trouble) else None
    good = trouble is None
    if policy.predictive is not None and policy.predictive.enabled and isinstance(outlook, predictive.Outlook):
        forecast = predictive.forecast_floor(policy.predictive, outlook, now.timestamp(), low)
        if forecast.applied:
            inputs["predictive"] = forecast.floor
            reasons.append(
                f"predictive: {forecast.reason} (replayed excess {forecast.error_ratio:.2f},"
                f" shortfall {forecast.shortfall_ratio:.2f})"
            )
        else:
            reasons.append(f"predictive not applied: {forecast.reason}")

    source = ""
    for name in SOURCES_BY_PRIORITY:  # the highest input; among equals, the first by priority
        if name in inputs and (not source or inputs[name] > inputs[source]):
            source = name
    desired = inputs[source]
    if trouble is not None:
        reasons.append(f"prometheus: {trouble}")
        held = memory.last_good_at is not None and now - memory.last_good_at <= policy.hold_on_error
        if held and memory.last_good_floor is not None:
            hold = max(memory.last_good_floor, state.current_replicas or 0)
            if hold > desired:
                desired, source = hold, "hold"
            reasons.append(
                f"holding last good floor {memory.last_good_floor} (current replicas "
                f"{state.current_replicas}) for up to {policy.hold_on_error}"
            )
        else:
            reasons.append("hold expired: falling back to schedule and static floors")
            source = f"fallback:{source}"
    desired = max(low, min(high, desired))

    previous = memory.floor if memory.floor is not None else state.current_floor
    result = _step_down(policy, desired, previous, memory=memory, now=now, reasons=reasons)

    apply = policy.mode == scaling.Mode.AUTO
    if policy.mode == scaling.Mode.PAUSED:
        result = state.current_floor if state.current_floor is not None else (previous or result)
        reasons.append(f"paused: floor frozen at {result}")
    elif policy.mode == scaling.Mode.FORECAST_ONLY:
        reasons.append("forecast only: nothing applied")
    new_memory = Memory(
        floor=result,
        decided_at=now,
        last_good_floor=result if good else memory.last_good_floor,
        last_good_at=now if good else memory.last_good_at,
    )
    return Decision(state.service, result, desired, source, tuple(reasons), apply, new_memory, forecast, trouble)
