"""The operator: Kopf handlers, leader election, the periodic resync and the scaling engine's loop,
all thin adapters over the pure core (render, reconcile, scaling)."""
