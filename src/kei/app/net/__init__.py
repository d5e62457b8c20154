"""``kei net``: tunnels brought up, taken down and watched, every step an event on
``net/<mode>/<name>`` (``reconciler.py``, ``service.py``)."""
