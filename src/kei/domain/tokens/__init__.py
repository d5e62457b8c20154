"""API tokens: who may read, write or administer a ``kei serve`` ledger, as events."""
