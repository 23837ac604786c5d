"""Wallet guardrails as a Pulumi CrossGuard policy pack:
``pulumi preview --policy-pack policies/pack [--policy-pack-config cfg.json]`` (cfg: {"all": {"environment": "dev"}})."""

from pulumi_policy import PolicyPack
from walletplatform.stacks import guardrails

PolicyPack(name="wallet-guardrails", policies=guardrails.render_policies())
