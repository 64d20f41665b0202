"""Training recipes that are not tasks: LM transfer, teacher ensembles, pseudo-labels, soft targets."""
