"""Recording disagreements: each one once, as a ``migrate.drift`` on the target's stream.

A disagreement is identified by its kind, version and the two checksums (or digests)
compared; one the log already holds is not appended again, so running ``verify``
every hour records an edit once, and a further edit of the same file again.
"""

from __future__ import annotations

from kei.app.migrate.session import Session
from kei.domain.migrate.drift import Disagreement
from kei.domain.migrate.plan import Observation


def record_new(session: Session, obs: Observation, found: list[Disagreement]) -> int:
    """Append the disagreements the log does not hold yet; how many were appended."""
    if session.recorder is None or obs.history is None:
        return 0
    known = obs.history.drifts
    fresh = [d for d in found if d.key not in known]
    session.recorder.record([d.payload(session.identity) for d in fresh])
    return len(fresh)
