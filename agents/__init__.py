"""Agents that talk to a FaceTwin env through the Gymnasium API: Bayesian optimisation,
its baselines, and the harness that runs and resumes them."""
