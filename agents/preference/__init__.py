"""Preference learning: pools of faces, the pairwise annotation page, preference models
fitted to people's answers, preferential BO, and simulated annotators for CI."""
