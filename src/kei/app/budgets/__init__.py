"""Budgets over the ledger: set and clear them (``writes.py``), measure their scopes'
spend (``spend.py``, ``status.py``) and append the thresholds crossed (``check.py``)."""
