"""Notification channels: one module per provider, all on httpx (see :mod:`.channel`)."""
