"""Forecasters by the name a ScalingPolicy uses (``spec.predictive.forecaster``)."""

from __future__ import annotations

from walletplatform.forecast import base, holt_winters, seasonal_naive, seasonal_profile
from walletplatform.models import scaling

DEFAULT: scaling.ForecasterName = "seasonal-profile"
FORECASTERS: dict[scaling.ForecasterName, base.Forecaster] = {
    "seasonal-naive": seasonal_naive.SeasonalNaive(),
    "seasonal-profile": seasonal_profile.SeasonalProfile(),
    "holt-winters": holt_winters.HoltWinters(),
}
