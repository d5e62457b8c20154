"""Agent harness hooks as use cases: what one hook call means (``calls.py``) and how it
is recorded in the log without a read model (``recording.py``)."""
