"""Retention: what fti keeps of its state and what `fti gc` may free (see ``fti.retention.plan``)."""
