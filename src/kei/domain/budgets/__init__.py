"""Budgets: scopes, periods and the rules of limits and thresholds (pure)."""
