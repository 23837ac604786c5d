"""Pure translation between decisions and the ScalingPolicy status that explains them, and back to the
engine's Memory after an operator restart. ``walletctl explain`` prints the same status as a table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from walletplatform.models import scaling
from walletplatform.scaling import decide


def render_service_status(decision: decide.Decision) -> scaling.ServiceScalingStatus:
    forecast = decision.forecast
    return scaling.ServiceScalingStatus(
        service=decision.service,
        floor=decision.floor,
        desired=decision.desired,
        source=decision.source,
        reasons=list(decision.reasons),
        forecast_peak=round(forecast.peak, 3) if forecast and forecast.peak is not None else None,
        forecast_peak_at=(
            datetime.fromtimestamp(forecast.peak_at, UTC).replace(microsecond=0)
            if forecast and forecast.peak_at is not None
            else None
        ),
        error_ratio=round(forecast.error_ratio, 3) if forecast and forecast.error_ratio is not None else None,
        shortfall_ratio=(
            round(forecast.shortfall_ratio, 3) if forecast and forecast.shortfall_ratio is not None else None
        ),
        predictive_applied=bool(forecast and forecast.applied),
        last_error=str(decision.trouble) if decision.trouble else "",
        last_good=decision.memory.last_good_at,
        last_good_floor=decision.memory.last_good_floor,
        decided_at=decision.memory.decided_at,
    )


def memory_from_status(entry: scaling.ServiceScalingStatus | None) -> decide.Memory:
    """What the engine remembered before a restart, from the status it wrote."""
    if entry is None:
        return decide.Memory()
    return decide.Memory(
        floor=entry.floor,
        decided_at=entry.decided_at,
        last_good_floor=entry.last_good_floor,
        last_good_at=entry.last_good,
    )


def without_times(entries: Sequence[scaling.ServiceScalingStatus]) -> list[dict[str, object]]:
    """The part of the explanation that matters for "did anything change" (not the decision times)."""
    return [e.model_dump(exclude={"decided_at", "last_good"}) for e in entries]


def render_table(status: scaling.ScalingPolicyStatus) -> str:
    """A readable table of the last decision per service, then each service's reasons."""
    header = ("SERVICE", "FLOOR", "DESIRED", "SOURCE", "FORECAST PEAK", "AT", "EXCESS", "SHORT", "PREDICTIVE")
    rows = [header]
    for s in status.services:
        rows.append(
            (
                s.service,
                str(s.floor),
                str(s.desired),
                s.source,
                "-" if s.forecast_peak is None else f"{s.forecast_peak:g}",
                "-" if s.forecast_peak_at is None else s.forecast_peak_at.strftime("%Y-%m-%d %H:%M"),
                "-" if s.error_ratio is None else f"{s.error_ratio:.2f}",
                "-" if s.shortfall_ratio is None else f"{s.shortfall_ratio:.2f}",
                "applied" if s.predictive_applied else "not applied",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    decided = status.last_decision.strftime("%Y-%m-%d %H:%M:%S %Z") if status.last_decision else "never"
    lines.insert(0, f"mode: {status.mode or '?'}    last decision: {decided}")
    for condition in status.conditions:
        lines.insert(1, f"{condition.type}: {condition.status.value} ({condition.reason}) {condition.message}")
    for s in status.services:
        lines.append("")
        lines.append(f"{s.service}:")
        lines += [f"  - {reason}" for reason in s.reasons]
        if s.last_error:
            lines.append(f"  ! {s.last_error}")
    return "\n".join(lines) + "\n"
