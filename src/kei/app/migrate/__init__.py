"""``kei migrate`` for other databases: the use cases.

``runner`` (``up``, ``down``: plan under the lock, one step per migration in
``steps``, crashes reconciled in ``reconcile``), ``status`` (``status``, ``verify``,
``create``), ``importing`` (``kei import kei-migrate``); ``session`` opens the target,
its folder and the log, ``recorder`` reads and appends the target's stream. Nothing
here prints: each use case returns a report (``reports``).
"""
