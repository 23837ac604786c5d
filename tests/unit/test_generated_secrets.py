"""The Secret values no rendered object holds: generated once by the applier, kept afterwards."""

from __future__ import annotations

import base64
import itertools

from walletplatform import catalog, generated_secrets, render
from walletplatform.models import platform
from walletplatform.render import labels


def auth_secret(cat: catalog.Catalog) -> dict:
    spec = platform.WalletPlatformSpec.model_validate({"services": [{"name": "account"}]})
    objects = render.render_platform(catalog.resolve("p", "ns", spec, cat))
    (secret,) = [o for o in objects if o["kind"] == "Secret"]
    return secret


def test_a_missing_value_is_generated_and_a_live_one_is_kept(cat: catalog.Catalog) -> None:
    secret = auth_secret(cat)
    assert generated_secrets.generated_keys(secret) == ("password",)
    counter = itertools.count()
    fresh = generated_secrets.fill(secret, None, generate=lambda: f"value-{next(counter)}")
    assert fresh["data"] == {"password": base64.b64encode(b"value-0").decode()}
    again = generated_secrets.fill(secret, {"data": fresh["data"]}, generate=lambda: f"value-{next(counter)}")
    assert again["data"] == fresh["data"]  # the live value, not value-1
    emptied = generated_secrets.fill(secret, {"data": {"password": ""}}, generate=lambda: "new")
    assert emptied["data"] == {"password": base64.b64encode(b"new").decode()}
    assert "data" not in secret  # the rendered object is not changed in place


def test_random_values_are_long_distinct_and_safe_in_redis_conf() -> None:
    values = {generated_secrets.random_value() for _ in range(50)}
    assert len(values) == 50
    assert all(len(v) >= 40 and v.replace("-", "").replace("_", "").isalnum() for v in values)


def test_objects_without_the_annotation_are_untouched(cat: catalog.Catalog) -> None:
    spec = platform.WalletPlatformSpec.model_validate({"services": [{"name": "account"}]})
    for obj in render.render_platform(catalog.resolve("p", "ns", spec, cat)):
        if labels.GENERATED_KEYS_ANNOTATION not in (obj["metadata"].get("annotations") or {}):
            assert generated_secrets.fill(obj, None) is obj
    config_map = {"kind": "ConfigMap", "metadata": {"annotations": {labels.GENERATED_KEYS_ANNOTATION: "x"}}}
    assert generated_secrets.generated_keys(config_map) == ()
