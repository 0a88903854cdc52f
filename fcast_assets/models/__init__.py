"""Models per game (issue 6): selectors, model choice from the registry and the compat matrix, training through
run plans, the model registry, retraining, predictions, attribution."""
