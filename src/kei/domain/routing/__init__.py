"""Choosing a model for a task (upstream kei-model-router): Beta posteriors, the DNA kernel,
complexity tiers, escalation, calibration, and a decision recorded exactly as an event.
"""
