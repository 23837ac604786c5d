"""Pure reconcile logic the Kopf adapter calls: compare rendered and live children, choose what to
write and prune, and map live children to status. No I/O."""
