"""Notifications: what a person is told about the log, and what became of each send.

The values here are shared by the channels (``kei.adapters.notify``), which turn a
:class:`Notification` into one provider request and its answer into a
:class:`SendOutcome`, and by the delivery use case (``kei.app.notify``), which decides
what to send from rules and records every request, claim and outcome as events.
"""

from kei.domain.notify.message import SEVERITIES, Notification, Severity, severity_rank
from kei.domain.notify.outcome import FAILURE_CLASSES, Delivered, Failed, FailureClass, SendOutcome

__all__ = [
    "FAILURE_CLASSES",
    "SEVERITIES",
    "Delivered",
    "Failed",
    "FailureClass",
    "Notification",
    "SendOutcome",
    "Severity",
    "severity_rank",
]
