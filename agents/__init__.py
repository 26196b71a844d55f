"""Agents that talk to a FaceTwin env through the Gymnasium API (later issues)."""
