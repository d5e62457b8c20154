"""The model catalog (upstream kei-model): entries, prices, resolution and fallback chains,
and matching a requested model id against what a backend serves.
"""
