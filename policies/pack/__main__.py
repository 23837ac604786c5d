"""Wallet guardrails as a Pulumi CrossGuard policy pack: ``pulumi preview --policy-pack policies/pack``.
The environment (dev, staging, prod; default prod) comes from ``--policy-pack-config``."""

from pulumi_policy import PolicyPack
from walletplatform.stacks import guardrails

PolicyPack(name="wallet-guardrails", policies=guardrails.render_policies())
