"""Inverse models: a face babbles on the twin, a dataset is kept, a network learns the
controls that make a given expression, and an agent uses it in one step."""
