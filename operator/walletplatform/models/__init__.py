"""Pydantic models of the two custom resources and the service catalog: the single source of truth
for the CRD schemas, the renderer's input and the scaling engine's input."""
