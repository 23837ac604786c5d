"""Pulumi adapter: components that wrap the one renderer's objects as pulumi-kubernetes resources
(``direct`` mode) or install the operator's chart and let it reconcile (``operator`` mode)."""
