"""Searching a face's controls for one expression: random search, CMA-ES and Bayesian
optimisation behind one ask/tell interface, the resumable harness that runs them, and
``facetwin optimize``."""
